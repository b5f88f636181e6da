package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/report"
	"github.com/funnel-dev/funnel/store"
)

// funnel report reads a database the daemon holds open (read-only), counts the
// period asked for, in each format; bad times are usage errors in words.
func TestReportCommand(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f.db")
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close() // open for writing all along, as the daemon keeps it
	now := time.Date(2026, 7, 2, 9, 0, 0, 0, time.UTC)
	nowFunc = func() time.Time { return now }
	defer func() { nowFunc = time.Now }()
	src := "flow: promo\ntrigger:\n  message: {text: hi}\nsteps:\n  - id: welcome\n    send: {text: Hi}\n  - id: answer\n    wait_for_reply: {}\n"
	err = st.Write(ctx, func(tx store.Tx) error {
		if err := tx.SaveContacts([]*store.Contact{{WaID: "16505551234", CreatedAt: now, UpdatedAt: now}}); err != nil {
			return err
		}
		v := &store.FlowVersion{FlowID: "promo", Hash: "h", File: "promo.yaml", Source: []byte(src), CreatedAt: now}
		if err := tx.InsertFlowVersion(v); err != nil {
			return err
		}
		var runs []*store.Run
		var steps []*store.RunStep
		for i, started := range []time.Time{now.Add(-48 * time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Hour)} {
			r := &store.Run{ID: tx.NewID("runs"), Contact: "16505551234", FlowID: "promo", VersionID: v.ID, Step: "answer",
				Status: store.RunWaitingReply, StartedAt: started, UpdatedAt: started}
			if i == 2 {
				r.SourceID, r.Headline = "120226305854810726", "Summer sandals -20%"
			}
			runs = append(runs, r)
			steps = append(steps, &store.RunStep{RunID: r.ID, FlowID: "promo", Step: "welcome", StartedAt: started, At: started},
				&store.RunStep{RunID: r.ID, FlowID: "promo", Step: "answer", StartedAt: started, At: started})
		}
		if err := tx.SaveRuns(runs); err != nil {
			return err
		}
		return tx.InsertRunSteps(steps)
	})
	if err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := run([]string{"report", "--db", path, "--since", "1d", "--format", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep report.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Since == nil || !rep.Since.Equal(now.Add(-24*time.Hour)) || len(rep.Flows) != 1 {
		t.Fatalf("report: %s", out.String())
	}
	f := rep.Flows[0]
	if f.Entered != 2 || f.Steps[0].Step != "welcome" || f.Steps[0].Reached != 2 || f.Steps[1].Waiting != 2 ||
		len(f.ByAd) != 1 || f.ByAd[0].Entered != 1 {
		t.Errorf("the last day's runs: %s", out.String())
	}

	out.Reset()
	if code := run([]string{"report", "--db", path, "--flow", "promo"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"funnel report: all runs", "promo: 3 entered, 0 completed, 0 converted", "welcome", "120226305854810726"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"report", "--db", path, "--format", "csv", "--until", "2026-07-01"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "promo,flow,,,entered,1\n") {
		t.Errorf("csv before 2026-07-01 (one run, 48h ago):\n%s", out.String())
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "last week"}, `--since: "last week" is not a time`},
		{[]string{"--since", "2026-07-02", "--until", "2026-07-01"}, "--until (2026-07-01T00:00:00Z) must be after --since"},
		{[]string{"--format", "xml"}, "xml"},
	} {
		errOut.Reset()
		if code := run(append([]string{"report", "--db", path}, c.args...), &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("report %v: exit %d %q, want exit %d with %q", c.args, code, errOut.String(), exitUsage, c.want)
		}
	}
}
