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
