package dsl

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderGolden draws every example flow as explain (text and JSON), Mermaid and
// dot, and compares with testdata/render (rewrite with -update).
func TestRenderGolden(t *testing.T) {
	p, diags, err := Load([]string{"../flows"}, Options{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("example flows: %v %v", err, diags)
	}
	update := flag.Lookup("update") != nil && flag.Lookup("update").Value.String() == "true"
	for _, f := range p.Flows {
		for _, format := range []string{"explain.txt", "explain.json", "mmd", "dot"} {
			name := strings.TrimSuffix(filepath.Base(f.File), ".yaml") + "." + format
			t.Run(name, func(t *testing.T) {
				var buf bytes.Buffer
				var err error
				switch format {
				case "explain.txt":
					err = p.WriteExplain(&buf, f, "text", 0)
				case "explain.json":
					err = p.WriteExplain(&buf, f, "json", 0)
				case "mmd":
					err = p.WriteGraph(&buf, f, "mermaid")
				case "dot":
					err = p.WriteGraph(&buf, f, "dot")
				}
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", "render", name)
				if update {
					os.WriteFile(golden, buf.Bytes(), 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if buf.String() != string(want) {
					t.Errorf("%s differs from %s:\n%s", name, golden, buf.String())
				}
			})
		}
	}
	if err := p.WriteGraph(&bytes.Buffer{}, p.Flows[0], "svg"); err == nil {
		t.Error("an unknown graph format must be an error")
	}
}
