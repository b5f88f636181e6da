// Package report turns the store's counts of a period's runs into the funnel
// report: per flow, runs entered and completed, each step's reach and
// drop-off, conversions, results by ad, and split tests with 95% Wilson
// intervals and a significance test. `funnel report`, GET /v1/report and the
// dashboard all show this one Report; docs/REPORT.md is its contract.
package report

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// Report is the funnel report of a period.
type Report struct {
	Since *time.Time `json:"since,omitempty"` // inclusive; absent: from the first run
	Until *time.Time `json:"until,omitempty"` // exclusive; absent: up to now
	Flows []*Flow    `json:"flows"`
}

// Flow is one flow's funnel. New measures are added as fields here (the JSON
// contract only grows).
type Flow struct {
	Flow      string  `json:"flow"`
	Entered   int64   `json:"entered"`   // runs started in the period
	Completed int64   `json:"completed"` // of those, runs that finished the flow
	Converted int64   `json:"converted"` // runs with at least one conversion
	Rate      float64 `json:"rate"`      // converted / entered
	CILow     float64 `json:"ci_low"`
	CIHigh    float64 `json:"ci_high"`

	Steps       []Step       `json:"steps"`
	Conversions []Conversion `json:"conversions"`
	ByAd        []Ad         `json:"by_ad"`
	Splits      []Split      `json:"splits"`
	// TimeToConvert summarises, over converted runs, the time from the run's
	// start to its first conversion; absent without conversions.
	TimeToConvert *Durations `json:"time_to_convert,omitempty"`
	// Daily is the conversions of the period's runs per UTC day.
	Daily []Day `json:"conversions_daily"`
	// MarketingLimited is the flow's messages of the period Meta refused with
	// 131049 (its per-user marketing limit), to MarketingLimitedContacts
	// contacts; WaitingAllowance its messages waiting now for the messaging
	// limit's allowance (docs/WHATSAPP.md, "Marketing limits").
	MarketingLimited         int64 `json:"marketing_limited,omitempty"`
	MarketingLimitedContacts int64 `json:"marketing_limited_contacts,omitempty"`
	WaitingAllowance         int64 `json:"waiting_allowance,omitempty"`
}

// Step is one step of the flow, in the flow's order.
type Step struct {
	Step      string `json:"step"`
	Reached   int64  `json:"reached"`   // runs that executed the step
	Replied   int64  `json:"replied"`   // runs whose contact answered it (wait_for_reply)
	Delivered int64  `json:"delivered"` // runs whose message of this step was delivered
	Read      int64  `json:"read"`      // … and read
	// DroppedOff is the runs that stopped at this step: ended without
	// completing (expired, cancelled, failed) or still waiting here.
	DroppedOff int64 `json:"dropped_off"`
	Stopped    int64 `json:"stopped"` // of those, ended
	Waiting    int64 `json:"waiting"` // of those, live
}

// Conversion is the conversions of one event (and currency).
type Conversion struct {
	Event    string  `json:"event"`
	Count    int64   `json:"count"`
	Value    float64 `json:"value"`    // sum of the values
	Currency string  `json:"currency"` // "" for conversions without a value
}

// Ad is the runs that entered from one click-to-WhatsApp ad.
type Ad struct {
	SourceID  string  `json:"source_id"`
	Headline  string  `json:"headline"`
	Entered   int64   `json:"entered"`
	Converted int64   `json:"converted"`
	Rate      float64 `json:"rate"`
}

// Split is one split step's variants and the test between them.
type Split struct {
	Step     string    `json:"step"`
	Variants []Variant `json:"variants"`
	// Test is "two-proportion z" for two variants, "chi-squared" for more.
	Test   string  `json:"test"`
	PValue float64 `json:"p_value"`
	// Verdict says in words what the numbers allow: a winner at 95%, no
	// difference yet, or not enough data yet.
	Verdict string `json:"verdict"`
}

// Variant is the runs a split assigned one variant.
type Variant struct {
	Variant   string  `json:"variant"`
	Entered   int64   `json:"entered"`
	Converted int64   `json:"converted"`
	Rate      float64 `json:"rate"`
	CILow     float64 `json:"ci_low"`
	CIHigh    float64 `json:"ci_high"`
}

// Durations summarise times in seconds.
type Durations struct {
	Count   int64   `json:"count"`
	Median  float64 `json:"median_seconds"`
	Mean    float64 `json:"mean_seconds"`
	P90     float64 `json:"p90_seconds"`
	Fastest float64 `json:"min_seconds"`
	Slowest float64 `json:"max_seconds"`
}

// Day is a count on one UTC day.
type Day struct {
	Day   string `json:"day"` // 2006-01-02
	Count int64  `json:"count"`
}

// Reader is what a report reads: the store's read side.
type Reader interface {
	Report(ctx context.Context, f store.ReportFilter) ([]*store.FlowCounts, error)
}

// Build reads the counts of runs started in [since, until) (zero: unbounded)
// of one flow ("" = all) and computes the report.
func Build(ctx context.Context, r Reader, flowID string, since, until time.Time) (*Report, error) {
	counts, err := r.Report(ctx, store.ReportFilter{FlowID: flowID, Since: since, Until: until})
	if err != nil {
		return nil, err
	}
	rep := &Report{Flows: []*Flow{}}
	if !since.IsZero() {
		s := since.UTC()
		rep.Since = &s
	}
	if !until.IsZero() {
		u := until.UTC()
		rep.Until = &u
	}
	for _, c := range counts {
		rep.Flows = append(rep.Flows, flowReport(c))
	}
	return rep, nil
}

func rate(k, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(k) / float64(n)
}

func flowReport(c *store.FlowCounts) *Flow {
	f := &Flow{Flow: c.FlowID, Entered: c.Entered, Completed: c.Completed, Converted: c.Converted,
		Rate: rate(c.Converted, c.Entered), Steps: []Step{}, Conversions: []Conversion{}, ByAd: []Ad{}, Splits: []Split{}, Daily: []Day{}}
	f.CILow, f.CIHigh = Wilson(c.Converted, c.Entered)
	f.MarketingLimited, f.MarketingLimitedContacts, f.WaitingAllowance = c.MarketingLimited, c.MarketingLimitedContacts, c.WaitingAllowance

	// Steps in the order of the flow's newest version, every step listed
	// (unreached ones as zeros); steps only older versions had follow.
	byName := map[string]store.StepCounts{}
	for _, s := range c.Steps {
		byName[s.Step] = s
	}
	var order []string
	if len(c.Source) > 0 {
		if parsed, _ := dsl.ParseFlow(c.File, c.Source); parsed != nil {
			for _, s := range parsed.Steps {
				order = append(order, s.ID)
			}
		}
	}
	seen := map[string]bool{}
	for _, name := range order {
		seen[name] = true
	}
	for _, s := range c.Steps {
		if !seen[s.Step] {
			order = append(order, s.Step)
			seen[s.Step] = true
		}
	}
	for _, name := range order {
		s := byName[name]
		f.Steps = append(f.Steps, Step{Step: name, Reached: s.Reached, Replied: s.Replied, Delivered: s.Delivered, Read: s.Read,
			DroppedOff: s.Stopped + s.Waiting, Stopped: s.Stopped, Waiting: s.Waiting})
	}

	for _, e := range c.Events {
		f.Conversions = append(f.Conversions, Conversion{Event: e.Event, Count: e.Count, Value: round(e.Value, 2), Currency: e.Currency})
	}
	for _, a := range c.Ads {
		f.ByAd = append(f.ByAd, Ad{SourceID: a.SourceID, Headline: a.Headline, Entered: a.Entered, Converted: a.Converted,
			Rate: rate(a.Converted, a.Entered)})
	}
	var split *Split
	flush := func() {
		if split != nil {
			finishSplit(split)
			f.Splits = append(f.Splits, *split)
		}
	}
	for _, v := range c.Splits {
		if split == nil || split.Step != v.Step {
			flush()
			split = &Split{Step: v.Step}
		}
		lo, hi := Wilson(v.Converted, v.Entered)
		split.Variants = append(split.Variants, Variant{Variant: v.Variant, Entered: v.Entered, Converted: v.Converted,
			Rate: rate(v.Converted, v.Entered), CILow: lo, CIHigh: hi})
	}
	flush()
	if n := len(c.ToConvert); n > 0 {
		d := &Durations{Count: int64(n), Fastest: c.ToConvert[0].Seconds(), Slowest: c.ToConvert[n-1].Seconds(),
			Median: quantile(c.ToConvert, 0.5), P90: quantile(c.ToConvert, 0.9)}
		var sum float64
		for _, t := range c.ToConvert {
			sum += t.Seconds()
		}
		d.Mean = round(sum/float64(n), 3)
		f.TimeToConvert = d
	}
	for _, d := range c.Daily {
		f.Daily = append(f.Daily, Day(d))
	}
	return f
}

// quantile of sorted durations in seconds (linear between closest ranks).
func quantile(ds []time.Duration, q float64) float64 {
	pos := q * float64(len(ds)-1)
	i := int(pos)
	if i+1 >= len(ds) {
		return ds[len(ds)-1].Seconds()
	}
	frac := pos - float64(i)
	return round(ds[i].Seconds()*(1-frac)+ds[i+1].Seconds()*frac, 3)
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// minExpected is the smallest expected count of conversions and of
// non-conversions per variant for which the tests' normal and chi-squared
// approximations are trusted (the usual rule of five).
const minExpected = 5

// finishSplit runs the test between a split's variants and words a verdict.
func finishSplit(s *Split) {
	sort.Slice(s.Variants, func(i, j int) bool { return s.Variants[i].Variant < s.Variants[j].Variant })
	k := make([]int64, len(s.Variants))
	n := make([]int64, len(s.Variants))
	var K, N int64
	for i, v := range s.Variants {
		k[i], n[i] = v.Converted, v.Entered
		K += v.Converted
		N += v.Entered
	}
	if len(s.Variants) == 2 {
		s.Test = "two-proportion z"
		s.PValue = TwoProportionP(k[0], n[0], k[1], n[1])
	} else {
		s.Test = "chi-squared"
		s.PValue = ChiSquaredP(k, n)
	}
	s.Verdict = verdict(s, K, N)
}

func verdict(s *Split, K, N int64) string {
	if len(s.Variants) < 2 || N == 0 {
		return "not enough data yet"
	}
	p := float64(K) / float64(N)
	for _, v := range s.Variants {
		if float64(v.Entered)*p < minExpected || float64(v.Entered)*(1-p) < minExpected {
			return "not enough data yet"
		}
	}
	if s.PValue >= 0.05 {
		return fmt.Sprintf("no clear difference yet (p = %.2f)", s.PValue)
	}
	best := s.Variants[0]
	for _, v := range s.Variants[1:] {
		if v.Rate > best.Rate {
			best = v
		}
	}
	if len(s.Variants) == 2 {
		return best.Variant + " converts better, 95% sure"
	}
	return best.Variant + " converts best; 95% sure the variants differ"
}
