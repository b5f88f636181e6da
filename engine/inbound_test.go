package engine_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// A message's own timestamp starts the window, but nothing is written after
// it arrives: a timestamp ahead of the receipt (skewed or forged) counts as
// written on arrival, so it cannot hold the window open for a month. An older
// timestamp (a late webhook) is kept as written.
func TestFromWebhookClampsFutureTimestamps(t *testing.T) {
	received := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		written time.Time
		want    time.Time
	}{
		{"future", received.Add(30 * 24 * time.Hour), received},
		{"late", received.Add(-2 * time.Hour), received.Add(-2 * time.Hour)},
		{"on time", received, received},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
				"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"106540352242922"},
				"contacts":[{"profile":{"name":"Kim"},"user_id":"US.13491208655302741918"}],
				"messages":[{"from_user_id":"US.13491208655302741918","id":"wamid.1","timestamp":"%d","type":"text","text":{"body":"hi"}}]}}]}]}`,
				c.written.Unix())
			env, err := whatsapp.ParseWebhook([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			items, err := engine.FromWebhook(env, received)
			if err != nil || len(items) != 1 {
				t.Fatalf("%d items, %v", len(items), err)
			}
			var in engine.Inbound
			if err := json.Unmarshal(items[0].Payload, &in); err != nil {
				t.Fatal(err)
			}
			if !in.Time.Equal(c.want) {
				t.Fatalf("time %v, want %v", in.Time, c.want)
			}
		})
	}
}

// An item dropped from a webhook is located by its JSON path: statuses[0],
// not statuss[0].
func TestEventErrorNamesTheField(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
		"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"106540352242922"},
		"statuses":[{"id":"wamid.1","status":"delivered","timestamp":"bad","recipient_id":"16505551234"}]}}]}]}`
	env, err := whatsapp.ParseWebhook([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Events()
	if err == nil || !strings.Contains(err.Error(), "changes[0].statuses[0]") {
		t.Fatalf("got %v", err)
	}
}
