package dsl_test

// The validator's fixture suite, in the style of rhysd/actionlint's testdata:
//
//	testdata/validate/ok/   cases that must load with no diagnostic at all
//	testdata/validate/err/  cases with the exact expected output in <case>.out
//
// A case is a single .yaml file or a folder whose files are loaded together (for
// start_flow across files, duplicate flow ids, …). Every case is checked against
// the one shared catalog testdata/validate/templates.json, in Meta's format, given
// explicitly as Options.Templates.
//
// Expected lines are `file:line:col: severity: message [rule]`, with the file name
// relative to the err/ folder, in the order dsl sorts diagnostics. Rewrite them after
// an intended change with
//
//	go test ./dsl -run TestValidate -update
//
// and read the diff before committing it: an .out file is a claim that the
// validator is right.

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/dsl"
)

var update = flag.Bool("update", false, "rewrite the expected .out files of testdata/validate/err")

const (
	validateDir = "../testdata/validate"
	catalogName = "templates.json"
)

// validateCase is one case: a .yaml file or a folder, named relative to its parent.
type validateCase struct {
	name string // "window_day3.yaml" or "crossflow_day3"
	dir  bool
}

// outName is the expected-output file of a case: window_day3.yaml → window_day3.out.
func (c validateCase) outName() string {
	if c.dir {
		return c.name + ".out"
	}
	return strings.TrimSuffix(c.name, filepath.Ext(c.name)) + ".out"
}

func listCases(t *testing.T, dir string) []validateCase {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []validateCase
	for _, e := range entries {
		switch {
		case e.IsDir():
			cases = append(cases, validateCase{e.Name(), true})
		case strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml"):
			cases = append(cases, validateCase{e.Name(), false})
		case strings.HasSuffix(e.Name(), ".out"):
		default:
			t.Errorf("%s: unexpected file in %s (cases are .yaml files or folders, expectations .out files)", e.Name(), dir)
		}
	}
	return cases
}

// runCase loads a case from inside its parent folder (so file names in the
// diagnostics are relative to it) and formats the diagnostics one per line.
func runCase(t *testing.T, dir string, c validateCase) (lines []string, diags dsl.Diagnostics) {
	t.Helper()
	t.Chdir(dir)
	catalog := filepath.Join("..", catalogName)
	_, diags, err := dsl.Load([]string{c.name}, dsl.Options{Templates: catalog})
	if err != nil {
		t.Fatalf("Load(%s): %v", c.name, err)
	}
	for _, d := range diags {
		if !d.Pos.IsValid() {
			t.Errorf("diagnostic without a position: %v", d)
		}
		lines = append(lines, formatDiagnostic(d))
	}
	return lines, diags
}

func formatDiagnostic(d dsl.Diagnostic) string {
	return filepath.ToSlash(d.Pos.String()) + ": " + string(d.Severity) + ": " + d.Message + " [" + d.Rule + "]"
}

func TestValidateOK(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join(validateDir, "ok"))
	cases := listCases(t, dir)
	if len(cases) == 0 {
		t.Fatal("no ok cases")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, c.outName())); err == nil {
				t.Errorf("%s: ok cases have no .out file", c.outName())
			}
			lines, _ := runCase(t, dir, c)
			if len(lines) > 0 {
				t.Errorf("want no diagnostics, got:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

func TestValidateErr(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join(validateDir, "err"))
	cases := listCases(t, dir)
	if len(cases) == 0 {
		t.Fatal("no err cases")
	}
	covered := map[string][]string{} // rule → cases
	outs := map[string]bool{}
	for _, c := range cases {
		outs[c.outName()] = true
		t.Run(c.name, func(t *testing.T) {
			lines, diags := runCase(t, dir, c)
			if len(diags) == 0 {
				t.Errorf("an err case must produce at least one diagnostic")
			}
			for _, d := range diags {
				covered[d.Rule] = append(covered[d.Rule], c.name)
			}
			got := strings.Join(lines, "\n") + "\n"
			out := filepath.Join(dir, c.outName())
			if *update {
				if err := os.WriteFile(out, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run with -update to create it, then read it)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\n%s", c.outName(), lineDiff(string(want), got))
			}
		})
	}

	// Every .out file belongs to a case.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".out") && !outs[e.Name()] {
			t.Errorf("%s: no case for this expected output", e.Name())
		}
	}
	// Every rule is exercised by some err case.
	var rules []string
	for _, r := range dsl.Rules {
		rules = append(rules, r.ID)
		if len(covered[r.ID]) == 0 {
			t.Errorf("rule %q is not covered by any case in %s", r.ID, dir)
		}
	}
	for r := range covered {
		if !contains(rules, r) {
			t.Errorf("rule %q produced by %v is not listed in dsl.Rules", r, covered[r])
		}
	}
	if testing.Verbose() {
		sort.Strings(rules)
		for _, r := range rules {
			t.Logf("%-12s %3d diagnostics in %d cases", r, len(covered[r]), len(uniq(covered[r])))
		}
	}
}

// TestValidateCasesCount keeps the suite from shrinking silently.
func TestValidateCasesCount(t *testing.T) {
	n := 0
	for _, sub := range []string{"ok", "err"} {
		n += len(listCases(t, filepath.Join(validateDir, sub)))
	}
	if n < 60 {
		t.Errorf("%d validator cases; the suite keeps at least 60", n)
	}
}

// TestValidateShippedFlows: the example flows of flows/ validate clean, with the
// catalog found beside them as `funnel validate flows` would.
func TestValidateShippedFlows(t *testing.T) {
	_, diags, err := dsl.Load([]string{"../flows"}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("%s", formatDiagnostic(d))
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// lineDiff shows expected and actual lines side by side where they differ.
func lineDiff(want, got string) string {
	w := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	g := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
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
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return b.String()
}
