package report

import (
	"fmt"
	"html"
	"io"
	"strconv"
	"time"
)

// The dashboard's charts, drawn on the server as SVG (no script, no library):
// fixed viewBox coordinates scaled to the page's width, colours as
// presentation attributes (the page's CSP allows no inline style), every text
// escaped. Bars are the project's green, drop-off red, intervals dark grey.

const (
	svgGreen = "#128c7e"
	svgLight = "#dcf8c6"
	svgRed   = "#c0392b"
	svgGrey  = "#555555"
	svgText  = "#222222"
)

func esc(s string) string { return html.EscapeString(s) }

func svgOpen(w io.Writer, width, height int, label string) {
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="system-ui, sans-serif" font-size="13" role="img" aria-label="%s">`,
		width, height, width, height, esc(label))
}

// truncate shortens a label to n characters with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// WriteFunnelSVG draws the flow's steps as a funnel: one bar per step, its
// length the runs that reached it (against the runs that entered), with the
// runs that dropped off there in red at its end.
func WriteFunnelSVG(w io.Writer, f *Flow) {
	const (
		width, labelW, rowH, barH, top = 540, 130, 28, 20, 8
		barW                           = width - labelW - 130
	)
	scale := f.Entered
	for _, s := range f.Steps {
		scale = max(scale, s.Reached)
	}
	height := top*2 + rowH*max(1, len(f.Steps))
	svgOpen(w, width, height, "funnel of "+f.Flow)
	if len(f.Steps) == 0 {
		fmt.Fprintf(w, `<text x="0" y="%d" fill="%s">no steps recorded yet</text>`, top+barH-5, svgGrey)
	}
	for i, s := range f.Steps {
		y := top + i*rowH
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end" fill="%s">%s</text>`, labelW-8, y+barH-5, svgText, esc(truncate(s.Step, 20)))
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" rx="3" fill="#f0f0f0"/>`, labelW, y, barW, barH)
		reached, dropped := 0, 0
		if scale > 0 {
			reached = int(float64(barW) * float64(s.Reached) / float64(scale))
			dropped = min(reached, int(float64(barW)*float64(s.DroppedOff)/float64(scale)))
		}
		if reached > 0 {
			fmt.Fprintf(w, `<rect class="reached" x="%d" y="%d" width="%d" height="%d" rx="3" fill="%s"><title>%s: %d reached</title></rect>`,
				labelW, y, reached, barH, svgGreen, esc(s.Step), s.Reached)
		}
		if dropped > 0 {
			fmt.Fprintf(w, `<rect class="dropped" x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d dropped off</title></rect>`,
				labelW+reached-dropped, y, dropped, barH, svgRed, esc(s.Step), s.DroppedOff)
		}
		label := strconv.FormatInt(s.Reached, 10) + " " + share(s.Reached, f.Entered)
		if s.DroppedOff > 0 {
			label += fmt.Sprintf(" −%d", s.DroppedOff)
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">%s</text>`, labelW+barW+8, y+barH-5, svgText, esc(label))
	}
	fmt.Fprint(w, `</svg>`)
}

// WriteDailySVG draws conversions per day as columns, every day from the first
// to the last shown (days without conversions as gaps).
func WriteDailySVG(w io.Writer, f *Flow) {
	const width, height, left, bottom, top = 540, 150, 34, 22, 10
	counts := map[string]int64{}
	var days []string
	var peak int64
	if len(f.Daily) > 0 {
		first, err1 := time.Parse("2006-01-02", f.Daily[0].Day)
		last, err2 := time.Parse("2006-01-02", f.Daily[len(f.Daily)-1].Day)
		for _, d := range f.Daily {
			counts[d.Day] = d.Count
			peak = max(peak, d.Count)
		}
		if err1 == nil && err2 == nil && last.Sub(first) <= 366*24*time.Hour {
			for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
				days = append(days, d.Format("2006-01-02"))
			}
		} else {
			for _, d := range f.Daily {
				days = append(days, d.Day)
			}
		}
	}
	svgOpen(w, width, height, "conversions per day of "+f.Flow)
	plotH := height - top - bottom
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, left, height-bottom, width, height-bottom, svgGrey)
	if len(days) == 0 {
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">no conversions yet</text>`, left+8, top+plotH/2, svgGrey)
		fmt.Fprint(w, `</svg>`)
		return
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end" fill="%s">%d</text>`, left-6, top+10, svgGrey, peak)
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end" fill="%s">0</text>`, left-6, height-bottom, svgGrey)
	slot := float64(width-left) / float64(len(days))
	for i, d := range days {
		n := counts[d]
		h := 0
		if peak > 0 {
			h = int(float64(plotH) * float64(n) / float64(peak))
		}
		x := left + int(float64(i)*slot)
		if n > 0 {
			fmt.Fprintf(w, `<rect class="day" x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d</title></rect>`,
				x+1, height-bottom-h, max(1, int(slot)-2), h, svgGreen, d, n)
		}
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">%s</text>`, left, height-5, svgGrey, days[0])
	if len(days) > 1 {
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end" fill="%s">%s</text>`, width, height-5, svgGrey, days[len(days)-1])
	}
	fmt.Fprint(w, `</svg>`)
}

// WriteSplitSVG draws each variant's conversion rate as a bar with its 95%
// interval as a whisker, on a 0–100% axis.
func WriteSplitSVG(w io.Writer, s *Split) {
	const width, labelW, rowH, top = 540, 110, 30, 8
	barW := width - labelW - 150
	height := top*2 + rowH*len(s.Variants) + 16
	svgOpen(w, width, height, "split "+s.Step)
	for i, v := range s.Variants {
		y := top + i*rowH
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end" fill="%s">%s</text>`, labelW-8, y+15, svgText, esc(truncate(v.Variant, 16)))
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="20" rx="3" fill="#f0f0f0"/>`, labelW, y, barW)
		fmt.Fprintf(w, `<rect class="rate" x="%d" y="%d" width="%d" height="20" rx="3" fill="%s"/>`, labelW, y, int(float64(barW)*v.Rate), svgLight)
		lo, hi := labelW+int(float64(barW)*v.CILow), labelW+int(float64(barW)*v.CIHigh)
		fmt.Fprintf(w, `<path class="ci" d="M%d,%d V%d M%d,%d H%d M%d,%d V%d" stroke="%s" stroke-width="2" fill="none"><title>95%% interval %s–%s</title></path>`,
			lo, y+4, y+16, lo, y+10, hi, hi, y+4, y+16, svgGrey, pct(v.CILow), pct(v.CIHigh))
		fmt.Fprintf(w, `<circle cx="%d" cy="%d" r="4" fill="%s"/>`, labelW+int(float64(barW)*v.Rate), y+10, svgGreen)
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">%s (%d/%d)</text>`, labelW+barW+8, y+15, svgText, pct(v.Rate), v.Converted, v.Entered)
	}
	axis := top + rowH*len(s.Variants) + 10
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">0%%</text><text x="%d" y="%d" text-anchor="end" fill="%s">100%%</text>`,
		labelW, axis, svgGrey, labelW+barW, axis, svgGrey)
	fmt.Fprint(w, `</svg>`)
}
