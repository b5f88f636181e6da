package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explain and graph take a folder that validates: one section per flow.
func TestExplainAndGraphOfAFolder(t *testing.T) {
	flows := []string{"menu", "order-shipped", "summer-sale", "weekly-deals"}
	for _, c := range []struct {
		args  []string
		each  func(flow string) string // what each flow's section contains
		count string                   // occurs once per flow
	}{
		{[]string{"explain", "../../flows"}, func(f string) string { return "flow " + f + " (../../flows/" }, "STEP  "},
		{[]string{"graph", "../../flows"}, func(f string) string { return "## " + f + "\n\n`../../flows/" }, "```mermaid\nflowchart TD\n"},
		{[]string{"graph", "--format", "dot", "../../flows"}, func(f string) string { return `digraph "` + f + `" {` }, "digraph "},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(c.args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			for _, f := range flows {
				if !strings.Contains(out.String(), c.each(f)) {
					t.Errorf("no section for %s (%q) in:\n%s", f, c.each(f), out.String())
				}
			}
			if n := strings.Count(out.String(), c.count); n != len(flows) {
				t.Errorf("%q occurs %d times, want %d", c.count, n, len(flows))
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"explain", "--format", "json", "../../flows"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var all []struct{ Flow string }
	if err := json.Unmarshal(out.Bytes(), &all); err != nil || len(all) != len(flows) || all[0].Flow != "menu" {
		t.Fatalf("explain --format json of a folder: %v %+v", err, all)
	}
	// A single file keeps its shape: one object.
	out.Reset()
	run([]string{"explain", "--format", "json", "../../flows/menu.yaml"}, &out, &errOut)
	var one struct{ Flow string }
	if err := json.Unmarshal(out.Bytes(), &one); err != nil || one.Flow != "menu" {
		t.Fatalf("explain --format json of a file: %v %s", err, out.String())
	}
}

func TestExplainOfAFolderWithErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "good.yaml"), []byte("flow: good\ntrigger: {message: {keywords: [hi]}}\nsteps:\n  - id: a\n    send: hello\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("flow: bad\ntrigger: {message: {keywords: [x]}}\nsteps:\n  - id: a\n    goto: nowhere\n"), 0o644)
	var out, errOut bytes.Buffer
	code := run([]string{"explain", dir}, &out, &errOut)
	if code != exitFailed || !strings.Contains(errOut.String(), "bad.yaml has errors; run `funnel validate "+dir+"`") ||
		!strings.Contains(out.String(), "bad.yaml:5:") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	empty := t.TempDir()
	if code := run([]string{"graph", empty}, &out, &errOut); code != exitNoInput {
		t.Fatalf("a folder without flows: exit %d, want %d", code, exitNoInput)
	}
	if code := run([]string{"graph", filepath.Join(empty, "missing.yaml")}, &out, &errOut); code != exitNoInput {
		t.Fatalf("a missing file: exit %d, want %d", code, exitNoInput)
	}
}

func TestSchemaTests(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"schema", "--tests"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var s struct{ Title string }
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.Title != "funnel conversation test" {
		t.Fatalf("schema --tests: %v %q", err, s.Title)
	}
	out.Reset()
	run([]string{"schema"}, &out, &errOut)
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.Title != "funnel flow" {
		t.Fatalf("schema: %v %q", err, s.Title)
	}
}
