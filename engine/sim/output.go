package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTimeline writes a timeline as text (a readable table) or JSON
// ({"timeline": [...]}).
func WriteTimeline(w io.Writer, format string, lines []Line) error {
	if format == "json" {
		if lines == nil {
			lines = []Line{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"timeline": lines})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\t\tSTEP\tMESSAGE\tWINDOW\tSTATUS")
	var start time.Time
	if len(lines) > 0 {
		start = lines[0].At
	}
	for _, l := range lines {
		arrow, step := "←", ""
		switch l.Direction {
		case "out":
			arrow, step = "→", l.Flow+"/"+l.Step
		case "convert", "capi":
			arrow, step = map[string]string{"convert": "★", "capi": "⇢"}[l.Direction], l.Flow+"/"+l.Step
			fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\n", l.At.Format("2006-01-02 15:04 MST"), elapsed(l.At.Sub(start)),
				arrow, step, oneLine(map[string]string{"convert": "convert ", "capi": ""}[l.Direction]+l.Text), l.Window, l.Status)
			continue
		case "run":
			arrow, step = "✗", l.Flow+"/"+l.Step
			fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\n", l.At.Format("2006-01-02 15:04 MST"), elapsed(l.At.Sub(start)),
				arrow, step, strings.ReplaceAll(l.Text, "\n", " "), l.Window, l.Status)
			continue
		}
		what := l.Type
		if l.Template != "" {
			what = "template " + l.Template
			if l.Fallback {
				what = "fallback " + l.Template
			}
		}
		status := l.Status
		if l.Direction == "in" {
			status = ""
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s %q\t%s\t%s\n", l.At.Format("2006-01-02 15:04 MST"), elapsed(l.At.Sub(start)),
			arrow, step, what, oneLine(l.Text), l.Window, status)
	}
	return tw.Flush()
}

func elapsed(d time.Duration) string {
	h := int(d.Hours())
	m := int(d.Minutes()) % 60
	return fmt.Sprintf("(+%dh%02d)", h, m)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > 70 {
		return string(r[:69]) + "…"
	}
	return s
}
