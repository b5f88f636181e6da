package dsl_test

// Golden-file tests of the diagnostic output formats. The expected outputs live in
// testdata/format/; rewrite them after an intended change with
//
//	go test ./dsl -run 'TestFormat' -update
//
// and read the diff before committing it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/funnel-dev/funnel/dsl"
)

func init() {
	// validate_test.go owns -update; define it here only if it is gone.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func formatUpdate() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

const formatGoldenDir = "testdata/format"

// formatSources are the files the fixture diagnostics point into.
var formatSources = map[string]string{
	// A tab and multi-byte characters before a column, a wide (CJK) title, and a
	// last line without a final line break.
	"flows/summer sale.yaml": "flow: summer-sale\n" +
		"trigger: click_to_whatsapp\n" +
		"steps:\n" +
		"  - id: welcome\n" +
		"    send:\n" +
		"      text: \"Olá\t${contact.nme} 👋\"\n" +
		"      buttons: [\"Sim 😍\", \"你好世界\", \"Não, obrigado, talvez mais tarde\"]\n" +
		"  - id: answer\n" +
		"    wait_for_reply: 4h\n" +
		"  - id: day3\n" +
		"    wait: 3d\n" +
		"  - id: reengage\n" +
		"    send: \"Oi ${contact.name}!\"",
	// Windows line endings, and a bidirectional override inside a string.
	"flows/a,b:c.yaml": "flow: odd\r\n" +
		"trigger: message\r\n" +
		"steps:\r\n" +
		"  - id: x\r\n" +
		"    tag: [\"vip\", \"\u202eevil\", \"\"]\r\n",
	// A syntax error just past the end of the last line.
	"flows/eof.yaml": "flow: eof\nsteps: [",
	// A file shorter than the line a diagnostic names.
	"flows/short.yaml": "flow: short\n",
	// flows/gone.yaml has no source: its diagnostic is written without a snippet.
}

func formatSource(file string) []byte {
	s, ok := formatSources[file]
	if !ok {
		return nil
	}
	return []byte(s)
}

// formatCol is the 1-based rune column of the first occurrence of sub in a
// fixture line.
func formatCol(t *testing.T, file string, line int, sub string) int {
	t.Helper()
	lines := strings.Split(strings.ReplaceAll(formatSources[file], "\r\n", "\n"), "\n")
	i := strings.Index(lines[line-1], sub)
	if i < 0 {
		t.Fatalf("%s:%d has no %q", file, line, sub)
	}
	return utf8.RuneCountInString(lines[line-1][:i]) + 1
}

func formatFixture(t *testing.T) dsl.Diagnostics {
	const sale, odd = "flows/summer sale.yaml", "flows/a,b:c.yaml"
	at := func(file string, line int, sub string) dsl.Pos {
		return dsl.Pos{File: file, Line: line, Col: formatCol(t, file, line, sub)}
	}
	return dsl.Diagnostics{
		{Pos: at(odd, 1, "odd"), Severity: dsl.SevError, Rule: dsl.RuleSchema, Flow: "odd",
			Message: "unknown key `\x1b[31mred` in the flow; 100% sure: check it,\nthen again"},
		{Pos: at(odd, 5, "evil"), Severity: dsl.SevWarning, Rule: dsl.RuleLimits, Flow: "odd", Step: "x",
			Message: "tag \"\u202eevil\" holds a character that reverses text"},
		{Pos: at(odd, 5, `""`), Severity: dsl.SevError, Rule: dsl.RuleSchema, Flow: "odd", Step: "x",
			Message: "empty tag"},
		{Pos: at(odd, 5, `""`), Severity: dsl.SevError, Rule: dsl.RuleSchema, Flow: "odd", Step: "x",
			Message: "empty tag"},
		{Pos: dsl.Pos{File: "flows/eof.yaml", Line: 2, Col: 9}, Severity: dsl.SevError, Rule: dsl.RuleSyntax,
			Message: "invalid YAML: did not find expected node content"},
		{Pos: dsl.Pos{File: "flows/gone.yaml", Line: 3, Col: 1}, Severity: dsl.SevError, Rule: dsl.RuleSchema,
			Message: "missing required key `steps` in the flow"},
		{Pos: dsl.Pos{File: "flows/short.yaml", Line: 9, Col: 3}, Severity: dsl.SevError, Rule: dsl.RuleReference,
			Flow: "short", Message: "unknown step `later`"},
		{Pos: at(sale, 6, "nme"), Severity: dsl.SevError, Rule: dsl.RuleExpression, Flow: "summer-sale", Step: "welcome",
			Message: "unknown field `nme` of `contact` (did you mean `name`?)"},
		{Pos: at(sale, 7, "Não"), Severity: dsl.SevError, Rule: dsl.RuleLimits, Flow: "summer-sale", Step: "welcome",
			Message: "button title is 31 characters; WhatsApp allows at most 20"},
		{Pos: at(sale, 13, "Oi"), Severity: dsl.SevError, Rule: dsl.RuleWindow, Flow: "summer-sale", Step: "reengage",
			Message: "free-form text outside the 24h window: welcome → answer (no reply in 4h: +4h) → day3 (+3d) → reengage: up to 76h after the contact's last message; send an approved template here, or add a `fallback:` template for when the window is closed",
			Path:    []string{"welcome", "answer", "day3", "reengage"}},
	}
}

func TestFormatGolden(t *testing.T) {
	ds := formatFixture(t)
	cases := []struct {
		golden string
		format string
		ds     dsl.Diagnostics
		color  bool
	}{
		{"mixed.txt", "text", ds, false},
		{"mixed.color.txt", "text", ds, true},
		{"mixed.json", "json", ds, false},
		{"mixed.github.txt", "github", ds, false},
		{"mixed.sarif", "sarif", ds, false},
		{"empty.txt", "text", nil, false},
		{"empty.json", "json", nil, false},
		{"empty.github.txt", "github", nil, false},
		{"empty.sarif", "sarif", nil, false},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			var b bytes.Buffer
			err := dsl.WriteDiagnostics(&b, c.format, c.ds, dsl.FormatOptions{
				Color: c.color, Source: formatSource, ToolVersion: "1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(formatGoldenDir, c.golden)
			if formatUpdate() {
				if err := os.MkdirAll(formatGoldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it, then read it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("output differs from %s\n%s", file, formatLineDiff(string(want), got))
			}
		})
	}
}

func formatLineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return b.String()
}

// TestFormatTextCaret checks the snippets' invariants on the fixture: the caret
// sits under the character the column names, whatever characters precede it.
func TestFormatTextCaret(t *testing.T) {
	var b bytes.Buffer
	if err := dsl.WriteDiagnostics(&b, "text", formatFixture(t), dsl.FormatOptions{Source: formatSource}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		// header, frame, line, caret; the tab shown as four spaces
		"flows/summer sale.yaml:6:28: error: unknown field `nme` of `contact` (did you mean `name`?) [expression]\n" +
			"   |\n" +
			" 6 |       text: \"Olá    ${contact.nme} 👋\"\n" +
			"   |                               ^\n",
		// emoji and CJK take two columns each
		" 7 |       buttons: [\"Sim 😍\", \"你好世界\", \"Não, obrigado, talvez mais tarde\"]\n" +
			"   |                                        ^\n",
		// the last line, without a final line break; a two-digit gutter
		"    |\n" +
			" 13 |     send: \"Oi ${contact.name}!\"\n" +
			"    |            ^\n",
		// past the end of the last line
		" 2 | steps: [\n" +
			"   |         ^\n",
		// no source, and a line past the end: the header alone
		"flows/gone.yaml:3:1: error: missing required key `steps` in the flow [schema]\nflows/short.yaml:9:3:",
		// control characters of a message are escaped, and a newline does not
		// split its header
		"unknown key `\\x1b[31mred` in the flow; 100% sure: check it,\\nthen again [schema]\n",
		// a bidirectional override is named, not obeyed; no \r from CRLF
		" 5 |     tag: [\"vip\", \"<U+202E>evil\", \"\"]\n" +
			"   |                           ^\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks\n%s\ngot:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\r\t\x1b\u202e") {
		t.Errorf("text output holds a raw tab, CR, ESC or bidi control:\n%q", out)
	}
	if strings.Contains(out, "\n\n") {
		t.Errorf("text output has blank lines:\n%s", out)
	}
	for i, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, " ") {
			t.Errorf("line %d has trailing white space: %q", i+1, l)
		}
	}

	// Without Source, every diagnostic is its header line.
	b.Reset()
	ds := formatFixture(t)
	if err := dsl.WriteDiagnostics(&b, "text", ds, dsl.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != len(ds) {
		t.Errorf("without sources: %d lines for %d diagnostics:\n%s", n, len(ds), b.String())
	}
}

func TestFormatTextColor(t *testing.T) {
	ds := dsl.Diagnostics{
		{Pos: dsl.Pos{File: "a.yaml", Line: 1, Col: 1}, Severity: dsl.SevError, Rule: "window", Message: "m"},
		{Pos: dsl.Pos{File: "a.yaml", Line: 1, Col: 3}, Severity: dsl.SevWarning, Rule: "opt-in", Message: "w"},
	}
	src := func(string) []byte { return []byte("x: y\n") }
	var plain, color bytes.Buffer
	if err := dsl.WriteDiagnostics(&plain, "text", ds, dsl.FormatOptions{Source: src}); err != nil {
		t.Fatal(err)
	}
	if err := dsl.WriteDiagnostics(&color, "text", ds, dsl.FormatOptions{Source: src, Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Errorf("ANSI codes without Color:\n%q", plain.String())
	}
	for _, want := range []string{
		"\x1b[1ma.yaml:1:1:\x1b[0m \x1b[1;31merror\x1b[0m: m \x1b[2m[window]\x1b[0m\n",
		"\x1b[1;33mwarning\x1b[0m: w \x1b[2m[opt-in]\x1b[0m\n",
		"   |   \x1b[1;32m^\x1b[0m\n",
	} {
		if !strings.Contains(color.String(), want) {
			t.Errorf("colored output lacks %q:\n%q", want, color.String())
		}
	}
	// Stripped of its colors, the colored output is the plain one.
	stripped := color.String()
	for _, code := range []string{"\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[1;31m", "\x1b[1;33m", "\x1b[1;32m"} {
		stripped = strings.ReplaceAll(stripped, code, "")
	}
	if stripped != plain.String() {
		t.Errorf("colored output differs from the plain one beyond colors:\n%s\nvs\n%s", stripped, plain.String())
	}
}

func TestFormatJSONShape(t *testing.T) {
	ds := formatFixture(t)
	var b bytes.Buffer
	if err := dsl.WriteDiagnostics(&b, "json", ds, dsl.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Diagnostics []map[string]json.RawMessage `json:"diagnostics"`
		Errors      *int                         `json:"errors"`
		Warnings    *int                         `json:"warnings"`
	}
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Errors == nil || got.Warnings == nil || *got.Errors != 9 || *got.Warnings != 1 {
		t.Errorf("errors, warnings = %v, %v; want 9, 1", got.Errors, got.Warnings)
	}
	if len(got.Diagnostics) != len(ds) {
		t.Fatalf("%d diagnostics, want %d", len(got.Diagnostics), len(ds))
	}
	keys := []string{"file", "line", "column", "severity", "rule", "flow", "step", "message", "path"}
	for i, d := range got.Diagnostics {
		if len(d) != len(keys) {
			t.Errorf("diagnostic %d has keys %v, want exactly %v", i, formatKeys(d), keys)
		}
		for _, k := range keys {
			if _, ok := d[k]; !ok {
				t.Errorf("diagnostic %d lacks %q", i, k)
			}
		}
		if p := string(d["path"]); !strings.HasPrefix(p, "[") {
			t.Errorf("diagnostic %d: path is %s, want an array", i, p)
		}
		// Written in the order given, not re-sorted.
		var file string
		_ = json.Unmarshal(d["file"], &file)
		if file != ds[i].Pos.File {
			t.Errorf("diagnostic %d is about %s, want %s (the input order)", i, file, ds[i].Pos.File)
		}
	}

	b.Reset()
	if err := dsl.WriteDiagnostics(&b, "json", dsl.Diagnostics{}, dsl.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"diagnostics\": [],\n  \"errors\": 0,\n  \"warnings\": 0\n}\n"; b.String() != want {
		t.Errorf("empty JSON = %q, want %q", b.String(), want)
	}
}

func formatKeys(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestFormatGitHub(t *testing.T) {
	ds := dsl.Diagnostics{
		{Pos: dsl.Pos{File: "flows/a,b:c.yaml", Line: 4, Col: 2}, Severity: dsl.SevWarning, Rule: "opt-in",
			Message: "50% off: a, b\r\nnext"},
		{Pos: dsl.Pos{File: "flows/x.yaml", Line: 1, Col: 1}, Severity: dsl.SevError, Rule: "window", Message: "m"},
	}
	var b bytes.Buffer
	if err := dsl.WriteDiagnostics(&b, "github", ds, dsl.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "::warning file=flows/a%2Cb%3Ac.yaml,line=4,col=2,title=funnel (opt-in)::50%25 off: a, b%0D%0Anext\n" +
		"::error file=flows/x.yaml,line=1,col=1,title=funnel (window)::m\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestFormatSARIFStructure checks the SARIF log field by field against what SARIF
// 2.1.0 requires and GitHub code scanning reads.
func TestFormatSARIFStructure(t *testing.T) {
	ds := formatFixture(t)
	var b bytes.Buffer
	if err := dsl.WriteDiagnostics(&b, "sarif", ds, dsl.FormatOptions{ToolVersion: "1.2.3"}); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	get := func(v any, path ...any) any {
		t.Helper()
		for _, p := range path {
			switch k := p.(type) {
			case string:
				m, ok := v.(map[string]any)
				if !ok {
					t.Fatalf("%v: not an object at %q", path, k)
				}
				if v, ok = m[k]; !ok {
					t.Fatalf("missing %v", path)
				}
			case int:
				a, ok := v.([]any)
				if !ok || k >= len(a) {
					t.Fatalf("%v: no item %d", path, k)
				}
				v = a[k]
			}
		}
		return v
	}
	str := func(v any, path ...any) string {
		t.Helper()
		s, ok := get(v, path...).(string)
		if !ok || s == "" {
			t.Errorf("%v: want a non-empty string, got %#v", path, get(v, path...))
		}
		return s
	}
	num := func(v any, path ...any) int {
		t.Helper()
		f, ok := get(v, path...).(float64)
		if !ok || f != float64(int(f)) {
			t.Errorf("%v: want an integer, got %#v", path, get(v, path...))
		}
		return int(f)
	}
	levels := map[string]bool{"none": true, "note": true, "warning": true, "error": true}

	if s := str(log, "$schema"); s != "https://json.schemastore.org/sarif-2.1.0.json" {
		t.Errorf("$schema = %q", s)
	}
	if s := str(log, "version"); s != "2.1.0" {
		t.Errorf("version = %q", s)
	}
	if runs := get(log, "runs").([]any); len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	run := get(log, "runs", 0)
	driver := get(run, "tool", "driver")
	if str(driver, "name") != "funnel" || str(driver, "informationUri") != "https://github.com/funnel-dev/funnel" ||
		str(driver, "version") != "1.2.3" {
		t.Errorf("driver = %v", driver)
	}
	if k := str(run, "columnKind"); k != "unicodeCodePoints" {
		t.Errorf("columnKind = %q; funnel's columns count code points", k)
	}
	rules := get(driver, "rules").([]any)
	ruleIDs := map[string]int{}
	for i := range rules {
		id := str(rules, i, "id")
		if _, dup := ruleIDs[id]; dup {
			t.Errorf("rule %q listed twice", id)
		}
		ruleIDs[id] = i
		str(rules, i, "name")
		str(rules, i, "shortDescription", "text")
		str(rules, i, "fullDescription", "text")
		if l := str(rules, i, "defaultConfiguration", "level"); !levels[l] {
			t.Errorf("rule %q: level %q", id, l)
		}
	}
	for _, r := range dsl.Rules {
		if _, ok := ruleIDs[r.ID]; !ok {
			t.Errorf("rule %q missing from the driver", r.ID)
		}
	}
	results := get(run, "results").([]any)
	if len(results) != len(ds) {
		t.Fatalf("%d results, want %d", len(results), len(ds))
	}
	fingerprints := map[string]int{}
	for i := range results {
		id := str(results, i, "ruleId")
		if idx := num(results, i, "ruleIndex"); idx != ruleIDs[id] {
			t.Errorf("result %d: ruleIndex %d, but rule %q is at %d", i, idx, id, ruleIDs[id])
		}
		if l := str(results, i, "level"); l != string(ds[i].Severity) {
			t.Errorf("result %d: level %q, want %q", i, l, ds[i].Severity)
		}
		if m := str(results, i, "message", "text"); m != ds[i].Message {
			t.Errorf("result %d: message %q", i, m)
		}
		loc := get(results, i, "locations", 0, "physicalLocation")
		uri := str(loc, "artifactLocation", "uri")
		if strings.Contains(uri, "\\") || strings.HasPrefix(uri, "/") || strings.Contains(uri, "://") || strings.Contains(uri, " ") {
			t.Errorf("result %d: uri %q is not a relative URI with forward slashes", i, uri)
		}
		if base := str(loc, "artifactLocation", "uriBaseId"); base != "%SRCROOT%" {
			t.Errorf("result %d: uriBaseId %q", i, base)
		}
		if l := num(loc, "region", "startLine"); l != ds[i].Pos.Line {
			t.Errorf("result %d: startLine %d", i, l)
		}
		if c := num(loc, "region", "startColumn"); c != ds[i].Pos.Col {
			t.Errorf("result %d: startColumn %d", i, c)
		}
		fps := get(results, i, "partialFingerprints").(map[string]any)
		if len(fps) == 0 {
			t.Errorf("result %d: no partialFingerprints", i)
		}
		for k := range fps {
			fp := str(fps, k)
			if j, dup := fingerprints[k+fp]; dup {
				t.Errorf("results %d and %d share the fingerprint %s", j, i, fp)
			}
			fingerprints[k+fp] = i
		}
	}
	if uri := str(results, 0, "locations", 0, "physicalLocation", "artifactLocation", "uri"); uri != "flows/a,b:c.yaml" {
		t.Errorf("uri = %q", uri)
	}
	if uri := str(results, len(results)-1, "locations", 0, "physicalLocation", "artifactLocation", "uri"); uri != "flows/summer%20sale.yaml" {
		t.Errorf("uri = %q, want spaces escaped", uri)
	}

	// The same finding on another line keeps its fingerprint (code scanning
	// follows the alert); another message gets another.
	moved := formatFixture(t)
	moved[len(moved)-1].Pos.Line += 5
	moved[len(moved)-2].Message += "!"
	var b2 bytes.Buffer
	if err := dsl.WriteDiagnostics(&b2, "sarif", moved, dsl.FormatOptions{ToolVersion: "1.2.4"}); err != nil {
		t.Fatal(err)
	}
	var log2 map[string]any
	if err := json.Unmarshal(b2.Bytes(), &log2); err != nil {
		t.Fatal(err)
	}
	fp := func(log any, i int) any { return get(log, "runs", 0, "results", i, "partialFingerprints") }
	n := len(moved)
	if a, b := fp(log, n-1), fp(log2, n-1); !formatJSONEqual(a, b) {
		t.Errorf("moving a finding changed its fingerprint: %v → %v", a, b)
	}
	if a, b := fp(log, n-2), fp(log2, n-2); formatJSONEqual(a, b) {
		t.Errorf("another message kept the fingerprint %v", a)
	}
}

func formatJSONEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestFormatSARIFPaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	wd, _ := os.Getwd() // dir with symlinks resolved the way Getwd sees them
	outside := filepath.Join(filepath.Dir(wd), "elsewhere", "b.yaml")
	ds := dsl.Diagnostics{
		{Pos: dsl.Pos{File: filepath.Join(wd, "flows", "a.yaml"), Line: 1, Col: 1}, Severity: dsl.SevError, Rule: "schema", Message: "in"},
		{Pos: dsl.Pos{File: "./flows/../flows/c.yaml", Line: 2, Col: 1}, Severity: dsl.SevError, Rule: "schema", Message: "dot"},
		{Pos: dsl.Pos{File: outside, Line: 1, Col: 1}, Severity: dsl.SevError, Rule: "schema", Message: "out"},
		{Pos: dsl.Pos{File: "x.yaml", Line: 1, Col: 1}, Severity: dsl.SevError, Rule: "brand-new", Message: "unknown rule"},
	}
	var b bytes.Buffer
	if err := dsl.WriteDiagnostics(&b, "sarif", ds, dsl.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Version *string
					Rules   []struct{ ID string }
				}
			}
			Results []struct {
				RuleIndex int
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI       string
							URIBaseID *string `json:"uriBaseId"`
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if run.Tool.Driver.Version != nil {
		t.Errorf("driver.version = %q without a ToolVersion", *run.Tool.Driver.Version)
	}
	loc := func(i int) (string, *string) {
		a := run.Results[i].Locations[0].PhysicalLocation.ArtifactLocation
		return a.URI, a.URIBaseID
	}
	if uri, base := loc(0); uri != "flows/a.yaml" || base == nil || *base != "%SRCROOT%" {
		t.Errorf("absolute path inside the working directory: uri %q", uri)
	}
	if uri, _ := loc(1); uri != "flows/c.yaml" {
		t.Errorf("uri %q, want the path cleaned", uri)
	}
	if uri, base := loc(2); !strings.HasPrefix(uri, "file:///") || !strings.HasSuffix(uri, "/elsewhere/b.yaml") || base != nil {
		t.Errorf("absolute path outside the working directory: uri %q, uriBaseId %v", uri, base)
	}
	// A rule missing from dsl.Rules is added to the driver, so ruleIndex holds.
	rules := run.Tool.Driver.Rules
	if idx := run.Results[3].RuleIndex; idx != len(rules)-1 || rules[idx].ID != "brand-new" || len(rules) != len(dsl.Rules)+1 {
		t.Errorf("unknown rule: ruleIndex %d of %d rules", idx, len(rules))
	}
}

func TestFormatUnknown(t *testing.T) {
	err := dsl.WriteDiagnostics(&bytes.Buffer{}, "xml", nil, dsl.FormatOptions{})
	if err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("err = %v, want one naming the format", err)
	}
	for _, f := range dsl.Formats {
		if err := dsl.WriteDiagnostics(&bytes.Buffer{}, f, nil, dsl.FormatOptions{}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

type formatFailWriter struct{}

func (formatFailWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFormatWriteError(t *testing.T) {
	for _, f := range dsl.Formats {
		err := dsl.WriteDiagnostics(formatFailWriter{}, f, formatFixture(t), dsl.FormatOptions{Source: formatSource})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: err = %v, want the writer's", f, err)
		}
	}
}

func TestColorEnabled(t *testing.T) {
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, k := range []string{"NO_COLOR", "FORCE_COLOR"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Setenv(k, v) // restored after the test
			os.Unsetenv(k)
		}
	}
	t.Setenv("TERM", "xterm-256color")

	if dsl.ColorEnabled(file) {
		t.Error("a regular file is not a terminal")
	}
	if dsl.ColorEnabled(nil) {
		t.Error("nil file")
	}
	t.Setenv("FORCE_COLOR", "1")
	if !dsl.ColorEnabled(file) || !dsl.ColorEnabled(nil) {
		t.Error("FORCE_COLOR=1 forces colors")
	}
	t.Setenv("NO_COLOR", "1")
	if !dsl.ColorEnabled(file) {
		t.Error("FORCE_COLOR wins over NO_COLOR")
	}
	t.Setenv("FORCE_COLOR", "0")
	if dsl.ColorEnabled(file) {
		t.Error("FORCE_COLOR=0 turns colors off")
	}
	os.Unsetenv("FORCE_COLOR")
	os.Unsetenv("NO_COLOR")

	if runtime.GOOS == "windows" {
		return
	}
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0) // a character device
	if err != nil {
		t.Skip(err)
	}
	defer tty.Close()
	if !dsl.ColorEnabled(tty) {
		t.Error("a character device without NO_COLOR")
	}
	t.Setenv("NO_COLOR", "")
	if !dsl.ColorEnabled(tty) {
		t.Error("an empty NO_COLOR counts as unset (no-color.org)")
	}
	t.Setenv("NO_COLOR", "1")
	if dsl.ColorEnabled(tty) {
		t.Error("NO_COLOR=1 turns colors off")
	}
	os.Unsetenv("NO_COLOR")
	t.Setenv("TERM", "dumb")
	if dsl.ColorEnabled(tty) {
		t.Error("TERM=dumb has no colors")
	}
}
