package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/funnel-dev/funnel/dsl"
)

// Formats lists the output formats of Write.
var Formats = []string{"text", "json", "csv"}

// Write writes the report in a format of Formats.
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "csv":
		return writeCSV(w, r)
	case "text", "":
		return writeText(w, r)
	}
	return fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }

// Period says in words which runs a report counts.
func (r *Report) Period() string {
	day := func(t time.Time) string { return t.Format(time.RFC3339) }
	switch {
	case r.Since != nil && r.Until != nil:
		return "runs started from " + day(*r.Since) + " to " + day(*r.Until)
	case r.Since != nil:
		return "runs started since " + day(*r.Since)
	case r.Until != nil:
		return "runs started before " + day(*r.Until)
	}
	return "all runs"
}

func writeText(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "funnel report: %s\n", r.Period())
	if len(r.Flows) == 0 {
		fmt.Fprintln(w, "\nno flows")
	}
	for _, f := range r.Flows {
		fmt.Fprintf(w, "\n%s: %d entered, %d completed, %d converted (%s, 95%% CI %s–%s)\n",
			f.Flow, f.Entered, f.Completed, f.Converted, pct(f.Rate), pct(f.CILow), pct(f.CIHigh))
		if f.MarketingLimited > 0 || f.WaitingAllowance > 0 {
			fmt.Fprintf(w, "  marketing limits: %d messages refused with 131049 (to %d contacts), %d waiting for the messaging limit's allowance\n",
				f.MarketingLimited, f.MarketingLimitedContacts, f.WaitingAllowance)
		}
		if len(f.Steps) > 0 {
			width := len("step")
			for _, s := range f.Steps {
				width = max(width, utf8.RuneCountInString(s.Step))
			}
			fmt.Fprintf(w, "  %-*s  %17s  %7s  %9s  %6s  %11s\n", width, "step", "reached", "replied", "delivered", "read", "dropped off")
			for _, s := range f.Steps {
				fmt.Fprintf(w, "  %-*s  %7d %9s  %7d  %9d  %6d  %11d\n", width, s.Step, s.Reached, share(s.Reached, f.Entered),
					s.Replied, s.Delivered, s.Read, s.DroppedOff)
			}
		}
		if len(f.Conversions) > 0 {
			fmt.Fprintln(w, "  conversions:")
			for _, c := range f.Conversions {
				fmt.Fprintf(w, "    %s × %d", c.Event, c.Count)
				if c.Currency != "" {
					fmt.Fprintf(w, ", %s %s", strconv.FormatFloat(c.Value, 'f', 2, 64), c.Currency)
				}
				fmt.Fprintln(w)
			}
		}
		if t := f.TimeToConvert; t != nil {
			fmt.Fprintf(w, "  time to convert: median %s, mean %s, 90%% within %s\n", secs(t.Median), secs(t.Mean), secs(t.P90))
		}
		if len(f.ByAd) > 0 {
			fmt.Fprintln(w, "  by ad:")
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			for _, a := range f.ByAd {
				fmt.Fprintf(tw, "    %s\t%q\t%d entered\t%d converted\t%s\n", a.SourceID, a.Headline, a.Entered, a.Converted, pct(a.Rate))
			}
			tw.Flush()
		}
		for _, s := range f.Splits {
			fmt.Fprintf(w, "  split %s (%s test, p %s): %s\n", s.Step, s.Test, pValue(s.PValue), s.Verdict)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			for _, v := range s.Variants {
				fmt.Fprintf(tw, "    %s\t%d/%d converted\t%s\t95%% CI %s–%s\n", v.Variant, v.Converted, v.Entered, pct(v.Rate), pct(v.CILow), pct(v.CIHigh))
			}
			tw.Flush()
		}
	}
	return nil
}

// pValue is "= 0.371", or "< 0.001" below that.
func pValue(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return "= " + strconv.FormatFloat(p, 'f', 3, 64)
}

// share is k of n as a percentage in parentheses ("" when n is 0).
func share(k, n int64) string {
	if n == 0 {
		return ""
	}
	return "(" + pct(float64(k)/float64(n)) + ")"
}

// secs is a duration in seconds the way the language writes durations.
func secs(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	if d < time.Second {
		return "<1s"
	}
	return dsl.FormatDuration(d)
}

// writeCSV writes one row per figure (long format: flow, section, name,
// variant, measure, value), which any spreadsheet pivots.
func writeCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	row := func(flow, section, name, variant, measure string, v any) {
		var s string
		switch x := v.(type) {
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			s = fmt.Sprint(x)
		}
		cw.Write([]string{flow, section, name, variant, measure, s})
	}
	cw.Write([]string{"flow", "section", "name", "variant", "measure", "value"})
	for _, f := range r.Flows {
		row(f.Flow, "flow", "", "", "entered", f.Entered)
		row(f.Flow, "flow", "", "", "completed", f.Completed)
		row(f.Flow, "flow", "", "", "converted", f.Converted)
		row(f.Flow, "flow", "", "", "rate", f.Rate)
		row(f.Flow, "flow", "", "", "ci_low", f.CILow)
		row(f.Flow, "flow", "", "", "ci_high", f.CIHigh)
		for _, s := range f.Steps {
			row(f.Flow, "step", s.Step, "", "reached", s.Reached)
			row(f.Flow, "step", s.Step, "", "replied", s.Replied)
			row(f.Flow, "step", s.Step, "", "delivered", s.Delivered)
			row(f.Flow, "step", s.Step, "", "read", s.Read)
			row(f.Flow, "step", s.Step, "", "dropped_off", s.DroppedOff)
		}
		for _, c := range f.Conversions {
			row(f.Flow, "conversion", c.Event, c.Currency, "count", c.Count)
			row(f.Flow, "conversion", c.Event, c.Currency, "value", c.Value)
		}
		if t := f.TimeToConvert; t != nil {
			row(f.Flow, "time_to_convert", "", "", "median_seconds", t.Median)
			row(f.Flow, "time_to_convert", "", "", "mean_seconds", t.Mean)
			row(f.Flow, "time_to_convert", "", "", "p90_seconds", t.P90)
		}
		for _, a := range f.ByAd {
			row(f.Flow, "ad", a.SourceID, "", "headline", a.Headline)
			row(f.Flow, "ad", a.SourceID, "", "entered", a.Entered)
			row(f.Flow, "ad", a.SourceID, "", "converted", a.Converted)
		}
		for _, s := range f.Splits {
			for _, v := range s.Variants {
				row(f.Flow, "split", s.Step, v.Variant, "entered", v.Entered)
				row(f.Flow, "split", s.Step, v.Variant, "converted", v.Converted)
				row(f.Flow, "split", s.Step, v.Variant, "rate", v.Rate)
				row(f.Flow, "split", s.Step, v.Variant, "ci_low", v.CILow)
				row(f.Flow, "split", s.Step, v.Variant, "ci_high", v.CIHigh)
			}
			row(f.Flow, "split", s.Step, "", "p_value", s.PValue)
			row(f.Flow, "split", s.Step, "", "verdict", s.Verdict)
		}
		for _, d := range f.Daily {
			row(f.Flow, "daily", d.Day, "", "conversions", d.Count)
		}
	}
	cw.Flush()
	return cw.Error()
}

// ParseTime reads a period bound: an RFC 3339 time (2026-11-01T09:00:00Z), a
// UTC date (2026-11-01, its midnight), or a duration before now (7d, 36h: the
// language's durations).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := dsl.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: give 2026-11-01T09:00:00Z, a date (2026-11-01) or a duration before now (7d, 36h)", s)
}
