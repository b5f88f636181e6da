package sim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConversationFixtures plays every script under testdata/conversations and
// compares its timeline with the golden file beside it (NAME.test.timeline);
// -update rewrites the goldens.
func TestConversationFixtures(t *testing.T) {
	files, err := FindScripts([]string{"../../testdata/conversations"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no conversation fixtures in testdata/conversations")
	}
	for _, file := range files {
		rel, _ := filepath.Rel("../../testdata/conversations", file)
		t.Run(rel, func(t *testing.T) {
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
			if res.Refused131047 != 0 {
				t.Errorf("the simulated API refused %d messages with 131047", res.Refused131047)
			}
			var buf bytes.Buffer
			if err := WriteTimeline(&buf, "text", res.Timeline); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".timeline"
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
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
