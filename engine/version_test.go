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
