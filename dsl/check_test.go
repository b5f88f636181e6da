package dsl

import (
	"strings"
	"testing"
)

func checkSrc(t *testing.T, src string, cat *Catalog, opts Options) Diagnostics {
	t.Helper()
	f, diags := ParseFlow("f.yaml", []byte(src))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	p, _ := NewProject([]*Flow{f}, func(*Flow) *Catalog { return cat })
	ds := Check(p, opts)
	ds.Sort()
	return ds
}

const waitThenText = "flow: m\ntrigger: message\nsteps:\n  - {id: a, send: hi}\n  - {id: w, wait: %s}\n  - {id: b, send: late}\n"

// The engine's deadline (24h less the guard minute) is where errors start; the
// margin below it makes a warning: the default 30m, a custom one, none.
func TestWindowMargin(t *testing.T) {
	for _, c := range []struct {
		wait   string
		margin string
		want   string // "", "warning" or "error"
	}{
		{"22h59m", "", ""},
		{"23h28m59s", "", ""},
		{"23h29m", "", "warning"},
		{"23h58m59s", "", "warning"},
		{"23h59m", "", "error"}, // the engine refuses from here on
		{"24h", "", "error"},
		{"21h59m", "2h", "warning"},
		{"21h58m", "2h", ""},
		{"23h58m59s", "-1s", ""}, // negative: no margin at all
		{"23h59m", "-1s", "error"},
		{"24h", "-1s", "error"},
	} {
		opts := Options{}
		if c.margin != "" {
			if strings.HasPrefix(c.margin, "-") {
				opts.Margin = -1
			} else {
				d, err := ParseDuration(c.margin)
				if err != nil {
					t.Fatal(err)
				}
				opts.Margin = d
			}
		}
		ds := checkSrc(t, strings.Replace(waitThenText, "%s", c.wait, 1), nil, opts)
		got := ""
		if len(ds) > 0 {
			got = string(ds[0].Severity)
		}
		if got != c.want || len(ds) > 1 {
			t.Errorf("wait %s, margin %q: %v, want %q", c.wait, c.margin, ds, c.want)
		}
		if len(ds) == 1 && (ds[0].Step != "b" || strings.Join(ds[0].Path, " ") != "a w b" || ds[0].Flow != "m") {
			t.Errorf("diagnostic fields: step %q, path %v, flow %q", ds[0].Step, ds[0].Path, ds[0].Flow)
		}
	}
}

// Without a catalog, templates cannot be checked (an error that says so), and a
// fallback is taken at its word rather than reported twice.
func TestNoCatalog(t *testing.T) {
	ds := checkSrc(t, `flow: m
language: en_US
trigger: message
steps:
  - {id: a, send: hi}
  - {id: w, wait: 3d}
  - {id: b, send: {text: late, fallback: some_template}}
  - {id: c, send: {template: other}}
`, nil, Options{})
	if len(ds) != 2 {
		t.Fatalf("want 2 diagnostics, got %v", ds)
	}
	for _, d := range ds {
		if d.Rule != RuleTemplate || !strings.Contains(d.Message, "cannot be checked: no template catalog") {
			t.Errorf("got %v", d)
		}
	}
}

// The diagnostics of a window error carry the witness path for JSON output; for an
// unbounded loop the path starts with the loop.
func TestWindowPaths(t *testing.T) {
	ds := checkSrc(t, `flow: m
trigger: message
steps:
  - {id: a, send: hi}
  - {id: w, wait: 1h}
  - {id: g, goto: a}
`, nil, Options{})
	if len(ds) != 1 || ds[0].Rule != RuleWindow {
		t.Fatalf("got %v", ds)
	}
	if got := strings.Join(ds[0].Path, " "); got != "g a w a" {
		t.Errorf("path %q", got)
	}
}
