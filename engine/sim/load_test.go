package sim

import (
	"path/filepath"
	"testing"
)

// `flows:` and `templates:` of a script are relative to the script, and an
// absolute path is used as written (it was joined to the script's folder).
func TestProjectForAbsolutePaths(t *testing.T) {
	flows, err := filepath.Abs("../../flows/summer_sale.yaml")
	if err != nil {
		t.Fatal(err)
	}
	templates, err := filepath.Abs("../../flows/templates.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, flows, templates string }{
		{"absolute", flows, templates},
		{"relative", "../../../../flows/summer_sale.yaml", "../../../../flows/templates.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Script{File: filepath.Join("testdata", "x", "a.test.yaml"), Flows: []string{c.flows}, Templates: c.templates}
			p, diags, err := ProjectFor(s, nil, "")
			if err != nil || diags.HasErrors() {
				t.Fatalf("%v %v", err, diags)
			}
			if len(p.Flows) != 1 {
				t.Fatalf("%d flows", len(p.Flows))
			}
		})
	}
}
