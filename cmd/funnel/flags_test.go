package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/store"
)

// Every --status and --format is checked before anything runs (exit 2 with the
// valid values) and completed by the shell.
func TestEnumFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "none.db") // never opened: the flag fails first
	for _, c := range []struct {
		args  []string // the command line up to the flag
		flag  string
		valid []string
	}{
		{[]string{"outbox", "--db", db}, "--status", store.OutboxStatuses},
		{[]string{"runs", "--db", db}, "--status", store.RunStatuses},
		{[]string{"outbox", "--db", db}, "--format", []string{"text", "json"}},
		{[]string{"runs", "--db", db}, "--format", []string{"text", "json"}},
		{[]string{"contacts", "--db", db}, "--format", []string{"text", "json"}},
		{[]string{"validate", "flows"}, "--format", []string{"text", "json", "github", "sarif"}},
		{[]string{"explain", "flows/menu.yaml"}, "--format", []string{"text", "json"}},
		{[]string{"graph", "flows/menu.yaml"}, "--format", []string{"mermaid", "dot"}},
		{[]string{"simulate", "--script", "x.test.yaml"}, "--format", []string{"text", "json"}},
	} {
		name := c.args[0] + " " + c.flag
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(append(append([]string{}, c.args...), c.flag, "bogus"), &out, &errOut)
			if code != exitUsage {
				t.Fatalf("%s bogus: exit %d, want %d\n%s", name, code, exitUsage, errOut.String())
			}
			if want := "use one of " + strings.Join(c.valid, ", "); !strings.Contains(errOut.String(), want) {
				t.Fatalf("%s bogus: stderr %q lacks %q", name, errOut.String(), want)
			}
			out.Reset()
			if code := run(append([]string{"__complete", c.args[0], c.flag}, ""), &out, &errOut); code != 0 {
				t.Fatalf("completion: exit %d", code)
			}
			got := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(got) != len(c.valid)+1 || strings.Join(got[:len(c.valid)], ",") != strings.Join(c.valid, ",") || got[len(c.valid)] != ":4" {
				t.Fatalf("completion of %s: %q, want %v and no file completion (:4)", name, got, c.valid)
			}
		})
	}
	// A valid value still works, and no --status means no filter.
	var out, errOut bytes.Buffer
	if code := run([]string{"graph", "--format", "dot", "../../flows/menu.yaml"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "digraph") {
		t.Fatalf("graph --format dot: exit %d %s%s", code, out.String(), errOut.String())
	}
}
