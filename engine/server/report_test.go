package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/report"
)

// GET /v1/report: the funnel report as JSON behind the bearer token, with its
// period and flow in the query; bad parameters are 400 in words.
func TestReportAPI(t *testing.T) {
	r := newRig(t)
	m := r.message("16505551234", "Hi!", 0)
	m.Referral = &whatsapp.Referral{SourceID: "120226305854810999", SourceType: "ad", Headline: "Summer sandals -20%", CtwaClid: "ARAkLkA"}
	r.deliver(m)
	r.settle()
	auth := map[string]string{"Authorization": "Bearer " + apiTok}

	if code, body := r.get("/v1/report", nil); code != 401 {
		t.Fatalf("without the token: %d %s", code, body)
	}
	code, body := r.get("/v1/report?flow=summer-sale", auth)
	if code != 200 {
		t.Fatalf("/v1/report: %d %s", code, body)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != 1 || rep.Flows[0].Flow != "summer-sale" || rep.Flows[0].Entered != 1 {
		t.Fatalf("report: %s", body)
	}
	f := rep.Flows[0]
	if len(f.ByAd) != 1 || f.ByAd[0].SourceID != "120226305854810999" || f.ByAd[0].Headline != "Summer sandals -20%" || f.ByAd[0].Entered != 1 {
		t.Errorf("by_ad: %+v", f.ByAd)
	}
	reached := map[string]int64{}
	for _, s := range f.Steps {
		reached[s.Step] = s.Reached
	}
	if reached["pick-intro"] != 1 || reached["intro-sandals"] != 1 || reached["intro-default"] != 0 || reached["answer"] != 1 {
		t.Errorf("steps reached: %v", reached)
	}

	// Every flow, and a period that holds no run.
	code, body = r.get("/v1/report", auth)
	if code != 200 || !strings.Contains(body, `"flow": "menu"`) {
		t.Errorf("all flows: %d %s", code, body)
	}
	code, body = r.get("/v1/report?flow=summer-sale&until=2020-01-01", auth)
	if code != 200 || !strings.Contains(body, `"entered": 0`) {
		t.Errorf("an empty period: %d %s", code, body)
	}
	for q, want := range map[string]string{
		"since=yesterday":                   `since: \"yesterday\" is not a time`,
		"until=2026-01-01&since=2026-02-01": "until must be after since",
	} {
		if code, body := r.get("/v1/report?"+q, auth); code != 400 || !strings.Contains(body, want) {
			t.Errorf("?%s: %d %s, want 400 with %q", q, code, body, want)
		}
	}
}
