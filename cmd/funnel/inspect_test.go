package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/store"
	"github.com/funnel-dev/funnel/store/postgres/pgtest"
)

// The inspection commands show times with their zone, and the window in words,
// from either database (--db a file or postgres://…).
func TestInspectTimesAndWindow(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { inspectTimesAndWindow(t, filepath.Join(t.TempDir(), "f.db")) })
	t.Run("postgres", func(t *testing.T) { inspectTimesAndWindow(t, pgtest.NewDatabase(t)) })
}

func inspectTimesAndWindow(t *testing.T, path string) {
	ctx := context.Background()
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 2, 9, 0, 0, 0, time.UTC)
	nowFunc = func() time.Time { return now }
	defer func() { nowFunc = time.Now }()
	wrote := now.Add(-(20*time.Hour + 48*time.Minute)) // the window closes in 3h12m
	err = st.Write(ctx, func(tx store.Tx) error {
		if err := tx.SaveContacts([]*store.Contact{
			{WaID: "16505551234", Name: "Ana", Timezone: "Europe/Lisbon", LastInboundAt: wrote, CreatedAt: wrote, UpdatedAt: wrote},
			{WaID: "16505550000", Name: "Bo", LastInboundAt: now.Add(-50 * time.Hour), CreatedAt: wrote, UpdatedAt: wrote},
			{WaID: "16505559999", Name: "Cy", CreatedAt: wrote, UpdatedAt: wrote},
			{WaID: "PT.13491208655302741918", UserID: "PT.13491208655302741918", Name: "Di", LastInboundAt: wrote, CreatedAt: wrote, UpdatedAt: wrote},
		}); err != nil {
			return err
		}
		v := &store.FlowVersion{FlowID: "menu", Hash: "h", Source: []byte("flow: menu"), CreatedAt: wrote}
		if err := tx.InsertFlowVersion(v); err != nil {
			return err
		}
		r := &store.Run{ID: tx.NewID("runs"), Contact: "16505551234", FlowID: "menu", VersionID: v.ID, Step: "choice", Status: store.RunWaitingReply, StartedAt: wrote, UpdatedAt: wrote}
		return tx.SaveRuns([]*store.Run{r})
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"contacts", "16505551234"}, []string{
			"window:   open, closes in 3h12m (2026-07-02 12:12:00 UTC)",
			"timezone: Europe/Lisbon (now Thu 10:00 WEST there)"}},
		{[]string{"contacts", "16505550000"}, []string{"window:   closed 26h ago, since 2026-07-01 07:00:00 UTC (templates only)"}},
		{[]string{"contacts", "16505559999"}, []string{"window:   closed: the contact has never written (templates only)", "consent:  unknown\n"}},
		{[]string{"contacts"}, []string{"2026-07-01 12:12:00 UTC", "WINDOW", "open, closes in 3h12m", "closed 26h ago", "unknown"}},
		{[]string{"contacts", "PT.13491208655302741918"}, []string{"timezone: - (quiet hours use Europe/Lisbon, from the BSUID's country; now Thu 10:00 WEST there)"}},
		{[]string{"runs"}, []string{"2026-07-01 12:12:00 UTC"}},
	} {
		var out, errOut bytes.Buffer
		if code := run(append(c.args, "--db", path), &out, &errOut); code != 0 {
			t.Fatalf("funnel %v: exit %d %s", c.args, code, errOut.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("funnel %v: missing %q in:\n%s", c.args, w, out.String())
			}
		}
	}
}

func TestRoughly(t *testing.T) {
	for d, want := range map[time.Duration]string{
		3*time.Hour + 12*time.Minute + 59*time.Second: "3h12m",
		30 * time.Second: "<1m",
		-time.Minute:     "<1m",
		50 * time.Hour:   "2d2h",
	} {
		if got := roughly(d); got != want {
			t.Errorf("roughly(%v) = %q, want %q", d, got, want)
		}
	}
}

// Consent and message errors read as words: no "(-, )" for a consent never
// recorded, no "0" for a refusal decided without calling the API.
func TestConsentAndErrorText(t *testing.T) {
	at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct{ got, want string }{
		{consentText("unknown", nil, ""), "unknown"},
		{consentText("opted_in", &at, "button"), "opted_in (2026-07-01 12:00:00 UTC, button)"},
		{consentText("opted_out", nil, "keyword"), "opted_out (keyword)"},
		{errorText(0, "the 24h window is closed"), "the 24h window is closed"},
		{errorText(131047, "re-engagement"), "131047 re-engagement"},
		{errorText(0, ""), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
