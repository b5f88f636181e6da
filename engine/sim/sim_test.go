package sim

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden timelines")

// TestExampleFlows runs every conversation test shipped in flows/ and compares its
// timeline with the golden file in testdata/.
func TestExampleFlows(t *testing.T) {
	files, err := FindScripts([]string{"../../flows"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no conversation tests in flows/")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			s, err := LoadScript(file)
			if err != nil {
				t.Fatal(err)
			}
			p, diags, err := ProjectFor(s, nil, "")
			if err != nil || diags.HasErrors() {
				t.Fatalf("flows: %v %v", err, diags)
			}
			res, err := Run(context.Background(), s, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Failures {
				t.Error(f)
			}
			var buf bytes.Buffer
			if err := WriteTimeline(&buf, "text", res.Timeline); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(filepath.Base(file), ".yaml")+".timeline")
			if *update {
				os.WriteFile(golden, buf.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if buf.String() != string(want) {
				t.Errorf("timeline differs from %s:\n%s", golden, buf.String())
			}
		})
	}
}
