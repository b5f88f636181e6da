package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/funnel-dev/funnel/report"
)

func newReportCmd() *cobra.Command {
	var db, flow, since, until, format string
	c := &cobra.Command{
		Use:   "report [--flow ID] [--since T] [--until T] [--format text|json|csv]",
		Short: "The funnel report: per flow, runs entered, steps reached, conversions, ads and split tests",
		Long: `The funnel report counts the runs started in a period (--since inclusive,
--until exclusive; both optional): per flow, runs entered and completed, each
step's reach, replies, deliveries, reads and drop-off, conversions by event,
time to convert, runs and conversions by click-to-WhatsApp ad, and each split's
variants with 95% Wilson intervals, a test between them and a verdict.

T is an RFC 3339 time (2026-11-01T09:00:00Z), a UTC date (2026-11-01) or a
duration before now (7d, 36h). The database is opened read-only: safe while
the daemon runs. The JSON is GET /v1/report's; docs/REPORT.md describes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := nowFunc()
			var from, to time.Time
			var err error
			if since != "" {
				if from, err = report.ParseTime(since, now); err != nil {
					return fail(exitUsage, "--since: %v", err)
				}
			}
			if until != "" {
				if to, err = report.ParseTime(until, now); err != nil {
					return fail(exitUsage, "--until: %v", err)
				}
			}
			if !from.IsZero() && !to.IsZero() && !to.After(from) {
				return fail(exitUsage, "--until (%s) must be after --since (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
			}
			r, closeDB, err := openDB(cmd, db)
			if err != nil {
				return err
			}
			defer closeDB()
			rep, err := report.Build(cmd.Context(), r, flow, from, to)
			if err != nil {
				return fail(exitFailed, "%v", err)
			}
			return report.Write(cmd.OutOrStdout(), rep, format)
		},
	}
	dbFlag(c, &db)
	c.Flags().StringVar(&flow, "flow", "", "only this flow")
	c.Flags().StringVar(&since, "since", "", "count runs started at or after T")
	c.Flags().StringVar(&until, "until", "", "count runs started before T")
	enumFlag(c, &format, "format", "text", report.Formats, "output format: text, json or csv")
	return c
}
