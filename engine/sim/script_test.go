package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

func TestParseScriptDefaultsAndForms(t *testing.T) {
	s, err := ParseScript("a.test.yaml", []byte(`flows: one.yaml
events:
  - inbound: "hi"
  - inbound: {interactive: {id: sale, title: Summer sale}}
  - inbound: {interactive: {id: hours}}
  - inbound: {text: late, delay: 25h}
  - advance: 1d12h
  - advance: 90m
  - event: {name: order_shipped, payload: {order_id: A-1}}
  - expect: {nothing_sent: true}
  - expect:
      sent: [{template: t, status: window_closed}, {type: text, text_contains: x}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Contact.WaID != "15550001111" || !s.Start.Equal(time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)) || len(s.Flows) != 1 {
		t.Errorf("defaults: %+v %s %v", s.Contact, s.Start, s.Flows)
	}
	ev := s.Events
	if ev[0].Inbound.Text != "hi" || ev[1].Inbound.Interactive != "Summer sale" || ev[2].Inbound.Interactive != "hours" ||
		ev[3].Inbound.Delay != 25*time.Hour || ev[4].Advance != 36*time.Hour || ev[5].Advance != 90*time.Minute ||
		ev[6].API.Name != "order_shipped" || ev[6].API.Payload["order_id"] != "A-1" || !ev[7].Expect.NothingSent ||
		len(ev[8].Expect.Sent) != 2 || ev[8].Expect.Sent[0].Status != "window_closed" || ev[8].Expect.Sent[1].Line != 12 {
		t.Errorf("events: %+v", ev)
	}
}

func TestParseScriptErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		src  string
		line int
		msg  string
	}{
		{"events:\n  - inbound: {txt: hi}\n", 2, "unknown key `txt` in inbound"},
		{"events:\n  - wait: 1h\n", 2, "unknown event `wait`"},
		{"events:\n  - advance: soon\n", 2, "`advance` needs a duration"},
		{"start: tomorrow\nevents: []\n", 1, "RFC 3339"},
		{"contact: {wa_id: \"1\", nick: x}\nevents: []\n", 1, "`contact`"},
		{"events:\n  - expect: {sent: [{txt: a}]}\n", 2, "matcher"},
		{"events:\n  - event: {payload: {a: 1}}\n", 2, "`event` needs `name`"},
		{"flows: []\n", 1, "needs `events`"},
		{"- a\n", 1, "a script is a mapping"},
	}
	for _, tc := range cases {
		_, err := ParseScript("bad.test.yaml", []byte(tc.src))
		var se *ScriptError
		if !errors.As(err, &se) || se.Line != tc.line || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("%q: got %v, want line %d containing %q", tc.src, err, tc.line, tc.msg)
		}
	}
}

// The simulated Cloud API refuses free-form outside the window, as Meta does,
// and counts it; templates go through.
func TestChannelRefusesFreeFormOutsideTheWindow(t *testing.T) {
	clock := engine.NewVirtualClock(time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC))
	ch := NewChannel(clock)
	ctx := context.Background()
	if _, err := ch.Send(ctx, "pn", whatsapp.NewText("1", "hi")); whatsapp.ErrorCode(err) != 131047 {
		t.Fatalf("never wrote: %v", err)
	}
	ch.Inbound("1", clock.Now())
	clock.Advance(dsl.Window - time.Second)
	if _, err := ch.Send(ctx, "pn", whatsapp.NewText("1", "hi")); err != nil {
		t.Fatalf("inside the window: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := ch.Send(ctx, "pn", whatsapp.NewText("1", "hi")); whatsapp.ErrorCode(err) != 131047 {
		t.Fatalf("at 24h: %v", err)
	}
	if id, err := ch.Send(ctx, "pn", whatsapp.NewTemplate("1", "t", "en_US")); err != nil || id == "" {
		t.Fatalf("template: %q %v", id, err)
	}
	// An older message does not move the window back.
	ch.Inbound("1", clock.Now().Add(-48*time.Hour))
	if ch.WindowOpen("1", clock.Now()) || ch.Refused != 2 {
		t.Fatalf("window open %v, refused %d", ch.WindowOpen("1", clock.Now()), ch.Refused)
	}
}

// The simulated API refuses templates that are not APPROVED as Meta does:
// PAUSED 132015, DISABLED 132016, PENDING (and the rest) 132001.
func TestChannelRefusesTemplatesNotApproved(t *testing.T) {
	clock := engine.NewVirtualClock(time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC))
	ch := NewChannel(clock)
	ch.SetTemplates(func(name, language string) (string, bool) {
		switch name {
		case "ok":
			return "APPROVED", true
		case "paused":
			return "PAUSED", true
		case "disabled":
			return "DISABLED", true
		case "pending":
			return "PENDING", true
		}
		return "", false
	})
	ctx := context.Background()
	for name, code := range map[string]int{"ok": 0, "paused": 132015, "disabled": 132016, "pending": 132001, "unknown": 0} {
		_, err := ch.Send(ctx, "pn", whatsapp.NewTemplate("1", name, "en_US"))
		if whatsapp.ErrorCode(err) != code || (code == 0) != (err == nil) {
			t.Errorf("%s: %v, want %d", name, err, code)
		}
	}
	ch.SetTemplateStatus("ok", "en_US", "PAUSED")
	if _, err := ch.Send(ctx, "pn", whatsapp.NewTemplate("1", "ok", "en_US")); whatsapp.Classify(err) != whatsapp.Held {
		t.Errorf("paused by a change: %v", err)
	}
	ch.SetTemplateStatus("ok", "en_US", "")
	if _, err := ch.Send(ctx, "pn", whatsapp.NewTemplate("1", "ok", "en_US")); err != nil {
		t.Errorf("change forgotten: %v", err)
	}
}
