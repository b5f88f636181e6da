package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

func init() {
	extraCommands = append(extraCommands, newContactsCmd, newRunsCmd, newOutboxCmd, newTemplatesCmd, newReportCmd)
}

// openDB opens the database read-only: safe while the daemon runs.
func openDB(cmd *cobra.Command, path string) (store.Reader, func(), error) {
	r, c, err := store.OpenReadOnly(cmd.Context(), path)
	if err != nil {
		return nil, nil, &exitError{code: exitNoInput, err: fmt.Errorf("database %s: %w", store.DisplayName(path), err)}
	}
	return r, func() { c.Close() }, nil
}

func dbFlag(c *cobra.Command, p *string) {
	def := os.Getenv("FUNNEL_DB")
	if def == "" {
		def = "funnel.db"
	}
	c.Flags().StringVar(p, "db", def, "the database: a SQLite file, or postgres://… for PostgreSQL")
}

// inspectCmd builds a read-only database command: --db and --format flags, the
// database opened before body runs.
func inspectCmd(c *cobra.Command, body func(cmd *cobra.Command, r store.Reader, format string, args []string) error) *cobra.Command {
	var db, format string
	dbFlag(c, &db)
	enumFlag(c, &format, "format", "text", []string{"text", "json"}, "output format: text or json")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		r, closeDB, err := openDB(cmd, db)
		if err != nil {
			return err
		}
		defer closeDB()
		return body(cmd, r, format, args)
	}
	return c
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// when shows a stored time with its zone: the database holds UTC.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

// nowFunc is the inspection commands' clock (tests set it).
var nowFunc = time.Now

// windowText says what the window allows now, in words: "open, closes in 3h12m
// (at …)", or closed since when.
func windowText(w server.WindowView, now time.Time) string {
	if w.ClosesAt == nil {
		return "closed: the contact has never written (templates only)"
	}
	if w.Open {
		return fmt.Sprintf("open, closes in %s (%s)", roughly(w.ClosesAt.Sub(now)), when(w.ClosesAt))
	}
	return fmt.Sprintf("closed %s ago, since %s (templates only)", roughly(now.Sub(*w.ClosesAt)), when(w.ClosesAt))
}

// windowShort is the window in a few words for the contacts table: "open,
// closes in 3h12m", "closed 26h ago", or "-" for a contact who never wrote.
// It uses the engine's rule (and its guard), as the contact view does.
func windowShort(c *store.Contact, now time.Time) string {
	if c.LastInboundAt.IsZero() {
		return "-"
	}
	closes := c.LastInboundAt.Add(dsl.Window)
	if engine.WindowOpen(c, now) {
		return "open, closes in " + roughly(closes.Sub(now))
	}
	return "closed " + roughly(now.Sub(closes)) + " ago"
}

// zoneText names the contact's zone with the local time there now. A contact
// known only by a BSUID whose country has one zone gets that zone's name:
// quiet hours use it.
func zoneText(tz, phone, userID string, now time.Time) string {
	if tz == "" && phone == "" {
		if z := engine.BSUIDZone(userID); z != "" {
			if loc, err := time.LoadLocation(z); err == nil {
				return fmt.Sprintf("- (quiet hours use %s, from the BSUID's country; now %s there)", z, now.In(loc).Format("Mon 15:04 MST"))
			}
		}
	}
	if tz == "" {
		return "- (quiet hours use the configured default zone)"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return tz
	}
	return fmt.Sprintf("%s (now %s there)", tz, now.In(loc).Format("Mon 15:04 MST"))
}

// roughly is a duration to the minute: 3h12m, 2d4h10m, <1m.
func roughly(d time.Duration) string {
	d = d.Truncate(time.Minute)
	if d <= 0 {
		return "<1m"
	}
	return dsl.FormatDuration(d)
}

func newContactsCmd() *cobra.Command {
	var limit int
	c := inspectCmd(&cobra.Command{
		Use:   "contacts [ID]",
		Short: "List contacts, or show one with its window, consent, runs and messages",
		Args:  cobra.MaximumNArgs(1),
	}, func(cmd *cobra.Command, r store.Reader, format string, args []string) error {
		out := cmd.OutOrStdout()
		if len(args) == 1 {
			now := nowFunc().UTC()
			v, err := server.ContactState(cmd.Context(), r, args[0], now)
			if err != nil {
				return fail(exitFailed, "%v", err)
			}
			if v == nil {
				return fail(exitFailed, "unknown contact %s", args[0])
			}
			if format == "json" {
				return printJSON(out, v)
			}
			fmt.Fprintf(out, "contact %s (%s)\n", v.Key, v.Name)
			fmt.Fprintf(out, "  phone:    %s\n  user_id:  %s\n  username: %s\n", orDash(v.WaID), orDash(v.UserID), orDash(v.Username))
			fmt.Fprintf(out, "  window:   %s\n", windowText(v.Window, now))
			fmt.Fprintf(out, "  consent:  %s\n", consentText(v.Consent.State, v.Consent.At, v.Consent.Source))
			fmt.Fprintf(out, "  tags:     %v\n  timezone: %s\n\n", v.Tags, zoneText(v.Timezone, v.WaID, v.UserID, now))
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tFLOW\tSTEP\tSTATUS\tSTARTED\tENDED\tREASON")
			for _, run := range v.Runs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", run.ID, run.Flow, run.Step, run.Status, when(&run.StartedAt), when(run.EndedAt), run.EndReason)
			}
			tw.Flush()
			fmt.Fprintln(out)
			printMessages(out, v.Messages)
			return nil
		}
		cs, err := r.ContactsAfter(cmd.Context(), "", limit)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		if format == "json" {
			return printJSON(out, cs)
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		now := nowFunc()
		fmt.Fprintln(tw, "CONTACT\tPHONE\tUSER_ID\tUSERNAME\tNAME\tLAST MESSAGE\tWINDOW\tCONSENT\tTAGS")
		for _, c := range cs {
			last := when(&c.LastInboundAt)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\n", c.WaID, orDash(c.Phone), orDash(c.UserID), orDash(c.Username), c.Name, last,
				windowShort(c, now), consentText(orUnknown(c.Consent), nil, ""), c.Tags)
		}
		return tw.Flush()
	})
	c.Flags().IntVar(&limit, "limit", 100, "how many contacts to list")
	return c
}

// consentText is the consent state with when and how it was recorded, when
// it was: "unknown" alone for a contact who never answered.
func consentText(state string, at *time.Time, source string) string {
	var parts []string
	if at != nil && !at.IsZero() {
		parts = append(parts, when(at))
	}
	if source != "" {
		parts = append(parts, source)
	}
	if len(parts) == 0 {
		return state
	}
	return state + " (" + strings.Join(parts, ", ") + ")"
}

// errorText is a message's error: the Graph API code when there is one
// (refusals decided before any call have none), then the reason.
func errorText(code int, reason string) string {
	if code == 0 {
		return reason
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", code, reason))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printMessages(out io.Writer, ms []server.MessageView) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MSG\tFLOW/STEP\tTYPE\tSTATUS\tCREATED\tSENT\tERROR")
	for _, m := range ms {
		typ := m.Type
		if m.Template != "" {
			typ = "template " + m.Template
		}
		fmt.Fprintf(tw, "%d\t%s/%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Flow, m.Step, typ, m.Status, when(&m.CreatedAt), when(m.SentAt), errorText(m.ErrorCode, m.LastError))
	}
	tw.Flush()
}

func newRunsCmd() *cobra.Command {
	var flow, status string
	var limit int
	c := inspectCmd(&cobra.Command{
		Use:   "runs [--flow ID] [--status STATUS]",
		Short: "List runs (newest first), filtered by flow and status",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, r store.Reader, format string, _ []string) error {
		runs, err := r.RunsWhere(cmd.Context(), flow, status, limit)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		out := cmd.OutOrStdout()
		if format == "json" {
			return printJSON(out, runs)
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tCONTACT\tFLOW\tVERSION\tSTEP\tSTATUS\tSTARTED\tREASON")
		for _, run := range runs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", run.ID, run.Contact, run.FlowID, run.VersionID, run.Step, run.Status,
				when(&run.StartedAt), run.EndReason)
		}
		return tw.Flush()
	})
	c.Flags().StringVar(&flow, "flow", "", "only runs of this flow")
	enumFlag(c, &status, "status", "", store.RunStatuses, "only runs in this status: "+strings.Join(store.RunStatuses, ", "))
	c.Flags().IntVar(&limit, "limit", 100, "how many runs")
	return c
}

func newOutboxCmd() *cobra.Command {
	var status string
	var limit int
	c := inspectCmd(&cobra.Command{
		Use:   "outbox [--status STATUS]",
		Short: "List messages (newest first): failed, refused and unknown ones stay visible here",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, r store.Reader, format string, _ []string) error {
		items, err := r.OutboxWhere(cmd.Context(), status, limit)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		views := []server.MessageView{}
		for _, it := range items {
			views = append(views, server.MessageViewOf(it))
		}
		if format == "json" {
			return printJSON(cmd.OutOrStdout(), views)
		}
		printMessages(cmd.OutOrStdout(), views)
		return nil
	})
	enumFlag(c, &status, "status", "", store.OutboxStatuses, "only messages in this status: "+strings.Join(store.OutboxStatuses, ", "))
	c.Flags().IntVar(&limit, "limit", 100, "how many messages")
	return c
}

func newTemplatesCmd() *cobra.Command {
	root := &cobra.Command{Use: "templates", Short: "Work with the WhatsApp template catalog"}
	var waba, output string
	var timeout time.Duration
	pull := &cobra.Command{
		Use:   "pull --waba ID [-o FILE]",
		Short: "Fetch the approved (and other) templates from the Graph API, in Meta's JSON",
		Long: `Fetches GET /{waba-id}/message_templates (following paging) with
FUNNEL_ACCESS_TOKEN and FUNNEL_GRAPH_URL, and writes Meta's JSON
({"data": [...]}: status and quality_score included), ready for funnel
validate --templates. Each template whose status changed since the pull that
wrote the file (or that is first seen in a status other than APPROVED) gets
"status_changed_at", the time of this pull; unchanged ones keep theirs, so
validate can say since when a template is PAUSED or DISABLED. The changes are
listed on stderr. The file is replaced only once the pull succeeded and the
new one is completely written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if waba == "" {
				return fail(exitUsage, "--waba is required (your WhatsApp Business Account id)")
			}
			token := os.Getenv("FUNNEL_ACCESS_TOKEN")
			if token == "" {
				return fail(exitUsage, "FUNNEL_ACCESS_TOKEN is not set")
			}
			base := os.Getenv("FUNNEL_GRAPH_URL")
			if base == "" {
				base = whatsapp.DefaultBaseURL
			}
			if err := whatsapp.CheckBaseURL(base); err != nil {
				return fail(exitUsage, "FUNNEL_GRAPH_URL: %v", err)
			}
			if timeout <= 0 {
				return fail(exitUsage, "--timeout must be positive")
			}
			cl := &whatsapp.Client{BaseURL: base, Token: token, HTTP: &http.Client{Timeout: timeout}}
			ts, err := cl.ListTemplates(cmd.Context(), waba)
			if err != nil {
				return fail(exitFailed, "pulling templates: %v", err)
			}
			var prev []byte
			if output != "" && output != "-" {
				prev, _ = os.ReadFile(output) // none yet: every status is first seen
			}
			if ts, err = stampStatusChanges(prev, ts, time.Now(), cmd.ErrOrStderr()); err != nil {
				return fail(exitFailed, "pulled templates: %v", err)
			}
			if output == "" || output == "-" {
				if err := whatsapp.WriteTemplates(cmd.OutOrStdout(), ts); err != nil {
					return fail(exitFailed, "%v", err)
				}
				return nil
			}
			if err := writeFileAtomic(output, func(w io.Writer) error { return whatsapp.WriteTemplates(w, ts) }); err != nil {
				return fail(exitFailed, "writing %s: %v", output, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d templates to %s\n", len(ts), output)
			return nil
		},
	}
	pull.Flags().StringVar(&waba, "waba", "", "WhatsApp Business Account id")
	pull.Flags().StringVarP(&output, "output", "o", "", "file to write (default stdout)")
	pull.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "limit of each Graph API request")
	root.AddCommand(pull)
	return root
}

// writeFileAtomic writes path through a temporary file beside it, renamed over
// path once written, synced and closed: a failed or interrupted write leaves the
// previous file whole (a validator reading it never sees half a catalog).
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
