package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEOutputs reruns every command whose output the README shows between
// `<!-- BEGIN name: funnel … -->` and `<!-- END name -->` and compares: the README
// never drifts from what funnel prints.
func TestREADMEOutputs(t *testing.T) {
	t.Chdir("../..")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- BEGIN ([a-z-]+): funnel ([^>]*?) -->\n```[a-z]*\n(.*?)```\n<!-- END ([a-z-]+) -->")
	blocks := re.FindAllSubmatch(readme, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d checked blocks in README.md, want the validate and graph outputs", len(blocks))
	}
	for _, b := range blocks {
		name, args, want := string(b[1]), strings.Fields(string(b[2])), string(b[3])
		t.Run(name, func(t *testing.T) {
			if lines := strings.SplitN(want, "\n", 2); strings.HasPrefix(lines[0], "$ ") {
				want = lines[1]
			}
			var out, errOut bytes.Buffer
			run(args, &out, &errOut)
			if out.String() != want {
				t.Errorf("README block %q is out of date.\nfunnel %s prints:\n%s\nREADME shows:\n%s", name, strings.Join(args, " "), out.String(), want)
			}
		})
	}
}

// TestREADMEQuickStart keeps the README's first commands runnable: a build, then
// the binary (not `go run`, whose child outlives a killed parent), and the tests.
func TestREADMEQuickStart(t *testing.T) {
	t.Chdir("../..")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Two commands\n.*?```sh\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no `## Two commands` block")
	}
	var cmds []string
	for _, line := range strings.Split(string(m[1]), "\n") {
		if line, _, _ = strings.Cut(line, "#"); strings.TrimSpace(line) != "" {
			for _, c := range strings.Split(line, "&&") {
				cmds = append(cmds, strings.Join(strings.Fields(c), " "))
			}
		}
	}
	want := []string{"go build ./cmd/funnel", "./funnel serve --dev", "go test ./..."}
	if strings.Join(cmds, "|") != strings.Join(want, "|") {
		t.Fatalf("README commands %q, want %q", cmds, want)
	}
	if !strings.Contains(string(readme), "Ctrl-C") {
		t.Error("README should say how to stop the daemon (Ctrl-C)")
	}
	// `serve --dev` with the defaults (./flows) must load: the flows it serves validate.
	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "flows"}, &out, &errOut); code != 0 {
		t.Fatalf("the flows `./funnel serve --dev` serves do not validate: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
