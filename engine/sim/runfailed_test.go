package sim

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A run that fails (here: a reply of `inf` makes a value that cannot be
// stored) shows on the timeline with its reason, and an expectation that
// waited for a message after it says why nothing came, instead of "got
// nothing".
func TestFailedRunOnTimeline(t *testing.T) {
	for _, c := range []struct {
		reply      string
		failed     bool
		wantInFail string
	}{
		{"2", false, ""},
		{"inf", true, "qty/store run failed: step store: the value of qty cannot be stored: +Inf is not a finite number"},
	} {
		t.Run(c.reply, func(t *testing.T) {
			s, err := ParseScript("qty.test.yaml", []byte(`contact: {wa_id: "16505551234", name: Ana}
start: 2026-07-01T10:00:00Z
events:
  - inbound: {text: "order"}
  - inbound: {text: "`+c.reply+`"}
  - expect:
      sent: [{text_contains: "Noted"}]
`))
			if err != nil {
				t.Fatal(err)
			}
			p, diags, err := ProjectFor(s, []string{"testdata/runfailed/qty.yaml"}, "")
			if err != nil || diags.HasErrors() {
				t.Fatalf("flows: %v %v", err, diags)
			}
			res, err := Run(context.Background(), s, p)
			if err != nil {
				t.Fatal(err)
			}
			var runLines []Line
			for _, l := range res.Timeline {
				if l.Direction == "run" {
					runLines = append(runLines, l)
				}
			}
			if !c.failed {
				if len(runLines) != 0 || len(res.Failures) != 0 {
					t.Fatalf("run lines %v, failures %v", runLines, res.Failures)
				}
				return
			}
			if len(runLines) != 1 || runLines[0].Flow != "qty" || runLines[0].Step != "store" || runLines[0].Status != "failed" ||
				!strings.Contains(runLines[0].Text, "+Inf is not a finite number") {
				t.Fatalf("run lines: %+v", runLines)
			}
			if len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Msg, c.wantInFail) {
				t.Fatalf("failures: %v\nwant one containing %q", res.Failures, c.wantInFail)
			}
			var buf bytes.Buffer
			if err := WriteTimeline(&buf, "text", res.Timeline); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), "✗  qty/store  run failed: step store:") {
				t.Fatalf("text timeline:\n%s", buf.String())
			}
		})
	}
}
