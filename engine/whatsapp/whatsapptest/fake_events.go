package whatsapptest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"
)

// The Conversions API for business messaging: POST /{dataset_id}/events with
// {"data": [event, …]}. The fake checks each event as Meta does for
// action_source "business_messaging" on WhatsApp and refuses the whole request
// on the first invalid one; accepted events are deduplicated by event name and
// event id, as Meta deduplicates them.

// ConversionEvents are the event names Meta accepts from business messaging.
var ConversionEvents = []string{"LeadSubmitted", "Purchase", "AddToCart", "InitiateCheckout", "ViewContent"}

// EventAttributionWindow: Meta refuses an event more than 7 days old.
const EventAttributionWindow = 7 * 24 * time.Hour

// Event is a conversion event the fake accepted.
type Event struct {
	DatasetID        string `json:"-"`
	EventName        string `json:"event_name"`
	EventTime        int64  `json:"event_time"`
	EventID          string `json:"event_id"`
	ActionSource     string `json:"action_source"`
	MessagingChannel string `json:"messaging_channel"`
	UserData         struct {
		WABAID   string `json:"whatsapp_business_account_id"`
		CtwaClid string `json:"ctwa_clid"`
	} `json:"user_data"`
	CustomData *struct {
		Value    *float64 `json:"value"`
		Currency string   `json:"currency"`
	} `json:"custom_data,omitempty"`
	// Received counts the requests that carried this event (a resend with the
	// same event id is deduplicated, not counted twice).
	Received int `json:"-"`
}

// EventsAttempt is one POST to /events, accepted or not.
type EventsAttempt struct {
	At        time.Time
	DatasetID string
	Body      []byte
	Code      int // 0 when accepted
	Subcode   int
}

type eventsState struct {
	datasets map[string]bool // nil: any numeric id
	noPermit bool            // the token lacks whatsapp_business_manage_events
	queue    []Fault
	attempts []EventsAttempt
	accepted []*Event
	byKey    map[string]*Event // event name + event id
}

// SetDatasets restricts the datasets that exist (default: any numeric id).
func (f *Fake) SetDatasets(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events.datasets = map[string]bool{}
	for _, id := range ids {
		f.events.datasets[id] = true
	}
}

// SetEventsPermission says whether the token has whatsapp_business_manage_events
// (default true); without it every events request fails with code 200.
func (f *Fake) SetEventsPermission(ok bool) {
	f.mu.Lock()
	f.events.noPermit = !ok
	f.mu.Unlock()
}

// InjectEvents queues faults for the next events requests (FaultHTTP500,
// FaultError, FaultDrop, FaultDropAfterAccept), apart from the messages' queue.
func (f *Fake) InjectEvents(faults ...Fault) {
	f.mu.Lock()
	f.events.queue = append(f.events.queue, faults...)
	f.mu.Unlock()
}

// Events lists the conversion events accepted, once per event name and id, in
// order of first acceptance.
func (f *Fake) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Event, len(f.events.accepted))
	for i, e := range f.events.accepted {
		out[i] = *e
	}
	return out
}

// EventsAttempts lists every events request.
func (f *Fake) EventsAttempts() []EventsAttempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]EventsAttempt(nil), f.events.attempts...)
}

var (
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	datasetRe  = regexp.MustCompile(`^[0-9]{1,20}$`)
)

type eventsError struct {
	code, subcode int
	title, msg    string
}

func (f *Fake) serveEvents(w http.ResponseWriter, r *http.Request, version, dataset string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	f.mu.Lock()
	now := f.now()
	a := EventsAttempt{At: now, DatasetID: dataset, Body: body}
	var fault Fault
	if len(f.events.queue) > 0 {
		fault, f.events.queue = f.events.queue[0], f.events.queue[1:]
	}
	n, e := 0, (*eventsError)(nil)
	switch {
	case fault.Kind == FaultHTTP500:
		e = &eventsError{code: 1, msg: "An unknown error occurred"}
	case fault.Kind == FaultError:
		e = &eventsError{code: fault.Code, msg: "injected"}
	case fault.Kind == FaultDrop:
	default:
		n, e = f.acceptEvents(r, version, dataset, body, now)
	}
	if e != nil {
		a.Code, a.Subcode = e.code, e.subcode
	}
	f.events.attempts = append(f.events.attempts, a)
	f.mu.Unlock()

	if fault.Kind == FaultDrop || fault.Kind == FaultDropAfterAccept {
		drop(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	var trace [8]byte
	rand.Read(trace[:])
	tr := base64.RawURLEncoding.EncodeToString(trace[:])
	if e != nil {
		status := HTTPStatusFor(e.code)
		if e.code == 1 {
			status = http.StatusInternalServerError
		}
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]any{"error": map[string]any{
			"message": fmt.Sprintf("(#%d) %s", e.code, map[bool]string{true: e.title, false: "Invalid parameter"}[e.title != ""]),
			"type":    "OAuthException", "code": e.code, "error_subcode": e.subcode,
			"error_user_title": e.title, "error_user_msg": e.msg, "fbtrace_id": tr}})
		w.Write(b)
		return
	}
	b, _ := json.Marshal(map[string]any{"events_received": n, "messages": []string{}, "fbtrace_id": tr})
	w.Write(b)
}

// acceptEvents checks a request under f.mu and records its events; it returns
// how many were received, or Meta's error.
func (f *Fake) acceptEvents(r *http.Request, version, dataset string, body []byte, now time.Time) (int, *eventsError) {
	if code, msg := f.authError(r, version); code != 0 {
		return 0, &eventsError{code: code, msg: msg}
	}
	if f.events.noPermit {
		return 0, &eventsError{code: 200, msg: "Permissions error: the token needs whatsapp_business_manage_events"}
	}
	if !datasetRe.MatchString(dataset) || (f.events.datasets != nil && !f.events.datasets[dataset]) {
		return 0, &eventsError{code: 100, subcode: 33, msg: fmt.Sprintf("Unsupported post request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", dataset)}
	}
	var req struct {
		Data []json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, &eventsError{code: 100, msg: "Invalid parameter: " + err.Error()}
	}
	if len(req.Data) == 0 || len(req.Data) > 1000 {
		return 0, &eventsError{code: 100, msg: fmt.Sprintf("The parameter data must hold 1 to 1000 events, found %d", len(req.Data))}
	}
	evs := make([]*Event, len(req.Data))
	for i, raw := range req.Data {
		ev := &Event{DatasetID: dataset}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(ev); err != nil {
			return 0, &eventsError{code: 100, msg: fmt.Sprintf("data[%d]: Invalid parameter: %v", i, err)}
		}
		if e := f.checkEvent(ev, now); e != nil {
			e.msg = fmt.Sprintf("data[%d]: %s", i, e.msg)
			return 0, e
		}
		evs[i] = ev
	}
	if f.events.byKey == nil {
		f.events.byKey = map[string]*Event{}
	}
	for _, ev := range evs {
		key := ev.EventName + "\x00" + ev.EventID
		if prev := f.events.byKey[key]; prev != nil && ev.EventID != "" {
			prev.Received++
			continue
		}
		ev.Received = 1
		f.events.byKey[key] = ev
		f.events.accepted = append(f.events.accepted, ev)
	}
	return len(evs), nil
}

func (f *Fake) checkEvent(ev *Event, now time.Time) *eventsError {
	known := false
	for _, n := range ConversionEvents {
		known = known || n == ev.EventName
	}
	switch {
	case !known:
		return &eventsError{code: 100, subcode: 2804066, title: "Messaging Event Invalid Event Type",
			msg: fmt.Sprintf("event_name %q is not supported for action_source business_messaging", ev.EventName)}
	case ev.ActionSource != "business_messaging":
		return &eventsError{code: 100, msg: fmt.Sprintf("action_source must be business_messaging, found %q", ev.ActionSource)}
	case ev.MessagingChannel != "whatsapp":
		return &eventsError{code: 100, msg: fmt.Sprintf("messaging_channel must be whatsapp, found %q", ev.MessagingChannel)}
	case ev.EventTime <= 0:
		return &eventsError{code: 100, msg: "event_time is required (Unix seconds)"}
	case time.Unix(ev.EventTime, 0).After(now.Add(time.Minute)):
		return &eventsError{code: 100, subcode: 2804004, title: "Event Timestamp In The Future", msg: "event_time is in the future"}
	case now.Sub(time.Unix(ev.EventTime, 0)) > EventAttributionWindow:
		return &eventsError{code: 100, subcode: 2804003, title: "Event Timestamp Too Old", msg: "event_time is more than 7 days ago"}
	case ev.UserData.CtwaClid == "":
		return &eventsError{code: 100, msg: "user_data.ctwa_clid is required for WhatsApp events"}
	case ev.UserData.WABAID != f.opts.WABAID:
		return &eventsError{code: 100, msg: fmt.Sprintf("user_data.whatsapp_business_account_id %q is not the WhatsApp Business Account of this dataset", ev.UserData.WABAID)}
	}
	cd := ev.CustomData
	if ev.EventName == "Purchase" && (cd == nil || cd.Value == nil || cd.Currency == "") {
		return &eventsError{code: 100, msg: "custom_data.value and custom_data.currency are required for Purchase events"}
	}
	if cd != nil && cd.Currency != "" && !currencyRe.MatchString(cd.Currency) {
		return &eventsError{code: 100, msg: fmt.Sprintf("custom_data.currency %q is not an ISO 4217 code", cd.Currency)}
	}
	if cd != nil && cd.Value != nil && *cd.Value < 0 {
		return &eventsError{code: 100, msg: "custom_data.value must not be negative"}
	}
	return nil
}
