package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/store"
)

// A run pinned to a flow version keeps the templates that version was
// resolved against, after a restart where the flow was removed (another flow
// now has its id) and the catalog changed: the UTILITY template with an IMAGE
// header is sent as such, not refused as MARKETING nor sent with a text header.
func TestPinnedRunKeepsItsVersionsTemplates(t *testing.T) {
	shipping := `flow: notices
language: en_US
trigger:
  event: {name: shipped}
steps:
  - id: later
    wait: 1h
  - id: named
    send:
      template: shipped
      header: "${event.image_url}"
      params: {order_id: "${event.order_id}", first_name: "${contact.name}"}
`
	r := newRig(t, []string{shipping})
	r.seedContacts(&store.Contact{WaID: ana, Name: "Ana"}) // no marketing consent
	r.event(ana, "shipped", map[string]any{"order_id": "A-1", "image_url": "https://example.com/p.jpg"})
	if run := r.run(ana); run.Status != store.RunWaiting {
		t.Fatalf("run %s", run.Status)
	}
	// Restart: the template became MARKETING with a text header, and the
	// project's flow `notices` is now another flow.
	r.catalog = strings.Replace(rigCatalog,
		"category: UTILITY, status: APPROVED, parameter_format: NAMED,\n     header: IMAGE,",
		"category: MARKETING, status: APPROVED, parameter_format: NAMED,\n     header: \"Order {{order_id}}\",", 1)
	if !strings.Contains(r.catalog, "category: MARKETING, status: APPROVED, parameter_format: NAMED,\n     header: \"Order") {
		t.Fatal("the catalog edit did not apply")
	}
	r.restart(onHi("notices", "", "  - id: m\n    send: {template: shipped, header: x, params: {order_id: a, first_name: b}}\n"))
	r.advance(2 * time.Hour)
	it := r.lastOut(ana)
	if it.Status != store.OutSent || it.Category != "UTILITY" {
		t.Fatalf("row %s %q category %s", it.Status, it.LastError, it.Category)
	}
	jsonEq(t, "the version's template", decodeJSON(t, it.Payload)["template"], `{"name":"shipped","language":{"code":"en_US"},"components":[
		{"type":"header","parameters":[{"type":"image","image":{"link":"https://example.com/p.jpg"}}]},
		{"type":"body","parameters":[
			{"type":"text","parameter_name":"order_id","text":"A-1"},
			{"type":"text","parameter_name":"first_name","text":"Ana"}]}]}`)
}

// A run keeps the whole set of flow versions it started under: a reload
// between the caller's wait and its start_flow does not pair the old caller
// (which waited a day, so the target had to start with a template) with the
// new target (which starts free-form, valid only with the new caller that
// waits an hour). Each set validates alone; mixed, the free-form message would
// go out after the window. The set survives a restart.
func TestStartFlowKeepsTheRunsProjectVersion(t *testing.T) {
	caller := func(wait string) string {
		return onHi("caller", "", "  - id: long\n    wait: "+wait+"\n  - id: hand-over\n    start_flow: target\n")
	}
	target := func(send string) string {
		return "flow: target\nlanguage: en_US\ntrigger: {message: {keywords: [target]}}\nsteps:\n  - id: first\n    send: " + send + "\n"
	}
	v1 := []string{caller("1d"), target(`{template: reminder, params: ["x"]}`)}
	v2 := []string{caller("1h"), target(`"Here is the link"`)}

	r := newRig(t, v1)
	old, restarted, young := "15550001", "15550002", "15550003"
	r.send(old, textMsg("hi"))
	r.advance(time.Hour)
	r.send(restarted, textMsg("hi"))
	r.load(v2...)
	r.send(young, textMsg("hi"))
	if a, b := r.run(old).ProjectVersionID, r.run(young).ProjectVersionID; a == b || a == 0 || b == 0 {
		t.Fatalf("project versions %d and %d", a, b)
	}
	check := func(waID, kind string) {
		t.Helper()
		it := r.lastOut(waID)
		if it.FlowID != "target" || it.Kind != kind || it.Status != store.OutSent {
			t.Errorf("%s: %s/%s %s %s (%s)", waID, it.FlowID, it.Step, it.Kind, it.Status, it.LastError)
		}
		rs := r.runs(waID)
		if len(rs) != 2 || rs[0].ProjectVersionID != rs[1].ProjectVersionID {
			t.Errorf("%s: the caller's and the target's runs are in different sets: %s", waID, describeRuns(rs))
		}
	}
	r.advance(23 * time.Hour) // 24h after old wrote, 23h after young
	check(old, store.KindTemplate)
	check(young, store.KindFreeForm)

	// Across a restart (v2 loaded, v1's set only in the database), the same.
	r.restart(v2...)
	r.advance(time.Hour)
	check(restarted, store.KindTemplate)
	assertNoLateFreeForm(t, r)
}
