package dsl

// Fuzz targets of the flow language. Run them with
//
//	go test ./dsl -run XXX -fuzz FuzzParseFlow -fuzztime 3m
//	go test ./dsl -run XXX -fuzz FuzzText -fuzztime 3m
//
// Crashers land in testdata/fuzz/FuzzX/ and are replayed by every `go test`.

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// fuzzDeadline is how long one input may take. Real files take milliseconds.
const fuzzDeadline = 3 * time.Second

var (
	fuzzCatalogOnce sync.Once
	fuzzCatalog     *Catalog
)

func testCatalog(t testing.TB) *Catalog {
	fuzzCatalogOnce.Do(func() {
		c, err := LoadCatalog("../testdata/validate/templates.json")
		if err != nil {
			t.Fatal(err)
		}
		fuzzCatalog = c
	})
	return fuzzCatalog
}

// seedFiles adds every fixture of testdata/validate to a fuzz corpus.
func seedFiles(f *testing.F, add func(data []byte)) {
	err := filepath.WalkDir("../testdata/validate", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			add(data)
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range nastyFlows {
		add([]byte(s))
	}
}

// nastyFlows are hand-written inputs at the edges of YAML and the flow language.
var nastyFlows = []string{
	"",
	"\n",
	"#",
	"---",
	"--- |\n  x",
	"null",
	"~",
	"[]",
	"{}",
	"&a [*a]",
	"a: &a\n  b: *a\n",
	"<<: {flow: x}\n",
	"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: \"${\"\n",
	"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: \"${}${{}}${'}'}${\\\"}\\\"}\"\n",
	"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: |2-\n      ${x\n   \n",
	"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: >+\n\n\n  ${contact.name}\n\n",
	"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: 'a''${contact.''name}'''\n",
	"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: \"\\x41\\u00e9\\U0001F600${contact.nam}\\\n  \\ ${x}\"\n",
	"flow: x\ntrigger: {schedule: {cron: \"@every 0s\"}}\nsteps:\n  - {id: a, goto: a}\n",
	"flow: x\ntrigger: message\nsteps:\n  - {id: a, wait: 99999999999999999999w}\n",
	"flow: x\nquiet_hours: {from: \"23:59\", to: \"00:00\"}\ntrigger: message\nsteps:\n  - {id: a, wait: {at: \"23:59\"}}\n  - {id: b, goto: a}\n",
	"flow: x\ntrigger: message\nsteps:\n  - {id: a, start_flow: x}\n",
	"flow: x\ntrigger: message\nsteps:\n  - {id: a, branch: [{if: \"1 in 1..9999999999\", goto: a}]}\n",
	"flow: x\ntrigger: message\nsteps:\n  - {id: a, branch: [{if: \"len(repeat('x', 999999999)) > 0\", goto: a}]}\n",
	"flow: x\ntrigger: message\nsteps:\n  - id: a\n    set: {contact.: 1, vars.: 2, \"\": 3, contact.attributes.x: 4}\n",
	"\xef\xbb\xbfflow: bom\ntrigger: message\nsteps:\n  - {id: a, send: x}\n",
	"flow: x\r\ntrigger: message\r\nsteps:\r\n  - id: a\r\n    send: |\r\n      ${contact.nme}\r\n",
	"flow: x\rtrigger: message\rsteps:\r  - {id: a, send: \"${x}\"}\r",
	"\tflow: x\n",
	"flow: x\x00\n",
	"flow: \xff\n",
	"!!binary flow: x",
	"flow: !!int x\n",
	"? [a, b]\n: c\n",
	"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: {template: \"\", params: {\"\": \"${}\"}}\n",
	strings.Repeat("[", 200) + strings.Repeat("]", 200),
	strings.Repeat("- ", 200) + "x",
	"a: " + strings.Repeat("{b: ", 100) + "c" + strings.Repeat("}", 100),
}

// checkDiags asserts what every diagnostic promises: a known rule and severity,
// a message, the file name, and a position inside the file.
func checkDiags(t *testing.T, file string, data []byte, ds []Diagnostic) {
	t.Helper()
	if len(data) > MaxFileSize { // refused unread: everything is at 1:1
		for _, d := range ds {
			if d.Pos != (Pos{File: file, Line: 1, Col: 1}) {
				t.Errorf("oversized file: position %v", d.Pos)
			}
		}
		return
	}
	src := &source{name: file, data: data}
	lines := src.lineRunes()
	rules := map[string]bool{}
	for _, r := range Rules {
		rules[r.ID] = true
	}
	for _, d := range ds {
		if !rules[d.Rule] {
			t.Errorf("unknown rule %q: %v", d.Rule, d)
		}
		if d.Severity != SevError && d.Severity != SevWarning {
			t.Errorf("unknown severity %q: %v", d.Severity, d)
		}
		if d.Message == "" {
			t.Errorf("empty message: %#v", d)
		}
		if !utf8.ValidString(d.Message) {
			t.Errorf("message is not UTF-8: %q", d.Message)
		}
		if d.Pos.File != file {
			t.Errorf("file %q, want %q: %v", d.Pos.File, file, d)
		}
		if d.Pos.Line < 1 || d.Pos.Line > len(lines) {
			t.Errorf("line %d outside 1..%d: %v", d.Pos.Line, len(lines), d)
			continue
		}
		if n := len(lines[d.Pos.Line-1]); d.Pos.Col < 1 || d.Pos.Col > n+1 {
			t.Errorf("column %d outside 1..%d: %v", d.Pos.Col, n+1, d)
		}
	}
}

func FuzzParseFlow(f *testing.F) {
	seedFiles(f, func(data []byte) { f.Add(data) })
	cat := testCatalog(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		if len(data) <= MaxFileSize {
			one, all := &source{data: data}, (&source{data: data}).lineRunes()
			if one.lineCount() != len(all) {
				t.Fatalf("lineCount %d, lineRunes %d", one.lineCount(), len(all))
			}
			for i := range all {
				if string(one.lineAt(i)) != string(all[i]) {
					t.Fatalf("line %d: lineAt %q, lineRunes %q", i, string(one.lineAt(i)), string(all[i]))
				}
			}
		}
		fl, diags := ParseFlow("fuzz.yaml", data)
		checkDiags(t, "fuzz.yaml", data, diags)
		if len(data) <= MaxFileSize && utf8.Valid(data) {
			var doc yaml.Node
			if decodeSafely(yaml.NewDecoder(bytes.NewReader(data)), &doc) == nil {
				checkVerbatim(t, &source{name: "fuzz.yaml", data: data}, &doc)
			}
		}
		if fl == nil {
			if len(diags) == 0 {
				t.Fatalf("no flow and no diagnostic")
			}
			return
		}
		if fl.File != "fuzz.yaml" || string(fl.Source) != string(data) || len(fl.Hash) != 64 {
			t.Fatalf("flow metadata: file %q, hash %q", fl.File, fl.Hash)
		}
		// The project-level checks run on whatever parsed, as Load does.
		p, pdiags := NewProject([]*Flow{fl}, func(*Flow) *Catalog { return cat })
		checkDiags(t, "fuzz.yaml", data, pdiags)
		checkDiags(t, "fuzz.yaml", data, Check(p, Options{}))
		if el := time.Since(start); el > fuzzDeadline {
			t.Fatalf("took %v for %d bytes", el, len(data))
		}
	})
}

// FuzzText fuzzes ${…} interpolation: parseText directly, and the same string as
// a flow's text written double-quoted and as a literal block.
func FuzzText(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${contact.name}", "Hi ${contact.name}!", "$${literal}", "${", "${}", "}${",
		"${'}'}", `${"}"}`, "${`}`}", `${"\"}"}`, "${{}}", "${{a: 1}.a}", "${contact.tags[0]}",
		"${1 +}", "${contact.nmae}", "${now.Year()}", "a ${b} c ${d} e", "$${${x}}", "${${x}}",
		"é😀${contact.name}中", "${\n contact.name\n}", "${'\\'}", "${\"a\\", "$", "$$", "${ }",
		"${len(contact.tags) > 1 ? \"many\" : \"few\"}", "${contact.attributes?.x ?? \"none\"}",
		"${repeat(\"x\", 1000000000)}", "${1..1000000000}", "${map(1..100000, # * 2)}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		if !utf8.ValidString(s) {
			return // flow files are refused before any text is parsed
		}
		n := utf8.RuneCountInString(s)
		posAt := func(i int) Pos {
			if i < 0 || i > n {
				t.Fatalf("posAt(%d) outside 0..%d for %q", i, n, s)
			}
			return Pos{File: "t", Line: 1, Col: i + 1}
		}
		txt, diags := parseText(s, Pos{File: "t", Line: 1, Col: 1}, posAt)
		if txt == nil || txt.Raw != s {
			t.Fatalf("parseText(%q) lost the text", s)
		}
		for _, d := range diags {
			if d.Rule != RuleExpression || d.Pos.Col < 1 || d.Pos.Col > n+1 || d.Message == "" {
				t.Errorf("bad diagnostic %v for %q", d, s)
			}
		}
		if len(diags) == 0 && !strings.Contains(s, "${") && (!txt.IsStatic() || txt.Literal() != s) {
			t.Errorf("%q has no ${ but is not its own literal: %q", s, txt.Literal())
		}
		if len(diags) > 0 && txt.IsStatic() && strings.Count(s, "${") > strings.Count(s, "$${") {
			// a text that lost a broken expression must not pass for static,
			// unless the only problem is an unterminated ${ kept as literal.
			for _, d := range diags {
				if !strings.HasPrefix(d.Message, "unterminated") {
					t.Errorf("%q: broken expression but IsStatic", s)
				}
			}
		}

		// The same string inside flow files.
		quoted, _ := json.Marshal(s) // JSON strings are YAML double-quoted scalars
		var block strings.Builder
		for _, l := range strings.Split(s, "\n") {
			block.WriteString("      " + l + "\n")
		}
		for _, file := range []string{
			"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: " + string(quoted) + "\n",
			"flow: x\ntrigger: message\nsteps:\n  - id: a\n    send: |-\n" + block.String(),
		} {
			_, ds := ParseFlow("t.yaml", []byte(file))
			checkDiags(t, "t.yaml", []byte(file), ds)
			lines := (&source{data: []byte(file)}).lineRunes()
			for _, d := range ds {
				if d.Rule == RuleExpression && d.Pos.Line < 5 {
					t.Errorf("%q: expression error %v before the text starts", s, d)
				}
				// An unterminated ${ points at its $ (block scalars hold the text verbatim).
				if strings.HasPrefix(d.Message, "unterminated") && strings.Contains(file, "|-") &&
					d.Pos.Line <= len(lines) && d.Pos.Col <= len(lines[d.Pos.Line-1]) {
					if r := lines[d.Pos.Line-1][d.Pos.Col-1]; r != '$' {
						t.Errorf("%q: unterminated ${ at %v, which holds %q", s, d.Pos, r)
					}
				}
			}
		}
		if el := time.Since(start); el > fuzzDeadline {
			t.Fatalf("took %v for %q", el, s)
		}
	})
}
