package report

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const fixtureFlow = `flow: summer-sale
trigger:
  click_to_whatsapp: {}
steps:
  - id: welcome
    send: {text: "Hi!", buttons: ["Yes please", "Not now"]}
  - id: answer
    wait_for_reply: {timeout: 4h}
  - id: pick-intro
    branch:
      - if: reply.text == "Yes please"
        goto: lead
  - id: lead
    send: {text: "Here is your code"}
  - id: never-reached
    send: {text: "unused"}
`

// fixture is a flow's counts as the store returns them: the golden files show
// every section of every format.
func fixture() []*store.FlowCounts {
	return []*store.FlowCounts{{
		FlowID: "summer-sale", File: "summer_sale.yaml", Source: []byte(fixtureFlow),
		Entered: 60, Completed: 41, Converted: 15,
		Steps: []store.StepCounts{
			{Step: "answer", Reached: 58, Replied: 44, Waiting: 3, Stopped: 11},
			{Step: "lead", Reached: 44, Delivered: 43, Read: 40},
			{Step: "old-step", Reached: 2, Stopped: 2},
			{Step: "pick-intro", Reached: 44},
			{Step: "welcome", Reached: 60, Delivered: 58, Read: 51, Stopped: 2},
		},
		Ads: []store.AdCounts{
			{SourceID: "120226305854810726", Headline: "Summer sandals -20%", Entered: 40, Converted: 15},
			{SourceID: "120226305854810999", Headline: "Beach bags", Entered: 20, Converted: 0},
		},
		Events: []store.EventTotals{
			{Event: "LeadSubmitted", Count: 15},
			{Event: "Purchase", Currency: "EUR", Count: 4, Value: 259.6},
		},
		Splits: []store.VariantCounts{
			{Step: "pick-intro", Variant: "discount", Entered: 30, Converted: 9},
			{Step: "pick-intro", Variant: "social-proof", Entered: 30, Converted: 6},
			{Step: "second-split", Variant: "a", Entered: 50, Converted: 10},
			{Step: "second-split", Variant: "b", Entered: 50, Converted: 20},
			{Step: "second-split", Variant: "c", Entered: 50, Converted: 30},
		},
		ToConvert: []time.Duration{90 * time.Second, 5 * time.Minute, 40 * time.Minute, 2 * time.Hour, 26 * time.Hour},
		Daily:     []store.DayCount{{Day: "2026-07-01", Count: 6}, {Day: "2026-07-02", Count: 9}},
	}}
}

type fakeReader []*store.FlowCounts

func (f fakeReader) Report(_ context.Context, rf store.ReportFilter) ([]*store.FlowCounts, error) {
	return f, nil
}

func TestFormatsGolden(t *testing.T) {
	since := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	rep, err := Build(context.Background(), fakeReader(fixture()), "", since, since.Add(7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range Formats {
		var buf bytes.Buffer
		if err := Write(&buf, rep, format); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "report."+format)
		if *update {
			if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s output differs from %s (go test ./report -update rewrites it):\n%s", format, golden, buf.String())
		}
	}
}

// The JSON has at least the contract: these keys, these types.
func TestJSONContract(t *testing.T) {
	rep, err := Build(context.Background(), fakeReader(fixture()), "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	var got struct {
		Flows []struct {
			Flow      *string `json:"flow"`
			Entered   *int64  `json:"entered"`
			Completed *int64  `json:"completed"`
			Steps     []struct {
				Step    *string `json:"step"`
				Reached *int64  `json:"reached"`
			} `json:"steps"`
			Conversions []struct {
				Event    *string  `json:"event"`
				Count    *int64   `json:"count"`
				Value    *float64 `json:"value"`
				Currency *string  `json:"currency"`
			} `json:"conversions"`
			ByAd []struct {
				SourceID  *string `json:"source_id"`
				Headline  *string `json:"headline"`
				Entered   *int64  `json:"entered"`
				Converted *int64  `json:"converted"`
			} `json:"by_ad"`
			Splits []struct {
				Step     *string `json:"step"`
				Variants []struct {
					Variant   *string  `json:"variant"`
					Entered   *int64   `json:"entered"`
					Converted *int64   `json:"converted"`
					Rate      *float64 `json:"rate"`
					CILow     *float64 `json:"ci_low"`
					CIHigh    *float64 `json:"ci_high"`
				} `json:"variants"`
				PValue *float64 `json:"p_value"`
			} `json:"splits"`
		} `json:"flows"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	f := got.Flows[0]
	if f.Flow == nil || *f.Flow != "summer-sale" || *f.Entered != 60 || *f.Completed != 41 {
		t.Fatalf("flow fields: %s", b)
	}
	if *f.Steps[0].Step != "welcome" || *f.Steps[0].Reached != 60 {
		t.Errorf("steps must follow the flow's order: %s", b)
	}
	c := f.Conversions[0]
	if *c.Event != "LeadSubmitted" || *c.Count != 15 || *c.Value != 0 || *c.Currency != "" {
		t.Errorf("conversions: %s", b)
	}
	a := f.ByAd[0]
	if *a.SourceID != "120226305854810726" || *a.Headline != "Summer sandals -20%" || *a.Entered != 40 || *a.Converted != 15 {
		t.Errorf("by_ad: %s", b)
	}
	v := f.Splits[0].Variants[0]
	if *v.Variant != "discount" || *v.Entered != 30 || *v.Converted != 9 || *v.Rate != 0.3 ||
		!near(*v.CILow, 0.1666, 0.0001) || !near(*v.CIHigh, 0.4788, 0.0001) || f.Splits[0].PValue == nil {
		t.Errorf("splits: %s", b)
	}
}

// The README's example report is this package's golden text: it shows what
// funnel prints.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "report.text"))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- report example: report/testdata/report.text -->\n```\n"
	_, rest, ok := strings.Cut(string(readme), marker)
	if !ok {
		t.Fatal("README.md has no report example")
	}
	_, rest, _ = strings.Cut(rest, "\n") // the command line
	shown, _, _ := strings.Cut(rest, "```\n")
	if shown != string(want) {
		t.Errorf("README's report example differs from report/testdata/report.text:\n%s", shown)
	}
}
