package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// AttributionWindow is how long after a click-to-WhatsApp click Meta attributes
// a conversion to the ad: a conversion later than that is recorded but not sent
// to the Conversions API.
const AttributionWindow = 7 * 24 * time.Hour

// outcomes is what a batch's runs achieved, written with the batch: clicks seen,
// variants assigned, conversions made.
type outcomes struct {
	clicks      map[string]*store.Click // contact → its latest click in this batch
	variants    []*store.RunVariant
	conversions []*store.Conversion
	converted   map[runStep]bool
	// values holds, per conversion, the error of a value that could not be
	// computed (the Conversions API event then fails with it).
	valueErrs map[*store.Conversion]string
}

type runStep struct {
	run  int64
	step string
}

func (b *batch) outcomes() *outcomes {
	if b.out == nil {
		b.out = &outcomes{clicks: map[string]*store.Click{}, converted: map[runStep]bool{}, valueErrs: map[*store.Conversion]string{}}
	}
	return b.out
}

// recordClick remembers a message's click-to-WhatsApp referral as the contact's
// latest click.
func (b *batch) recordClick(c *store.Contact, ref *whatsapp.Referral, at time.Time) {
	if ref == nil || (ref.SourceID == "" && ref.CtwaClid == "") {
		return
	}
	o := b.outcomes()
	if prev := o.clicks[c.WaID]; prev != nil && prev.At.After(at) {
		return
	}
	o.clicks[c.WaID] = &store.Click{Contact: c.WaID, SourceID: ref.SourceID, CtwaClid: ref.CtwaClid, Headline: ref.Headline, At: at}
}

// runVariants returns the variants recorded for a run, when its flow has a
// split (one query, once per run and batch).
func (b *batch) runVariants(r *store.Run) map[string]string {
	if f, ok := b.e.versions.Load(r.VersionID); ok && !hasSplit(f.(*dsl.Flow)) {
		return map[string]string{}
	}
	vs, err := b.tx.RunVariants([]int64{r.ID})
	if err != nil || vs[r.ID] == nil {
		if err != nil {
			b.e.log.Warn("reading a run's split variants", "run", r.ID, "err", err)
		}
		return map[string]string{}
	}
	return vs[r.ID]
}

func hasSplit(f *dsl.Flow) bool {
	for _, s := range f.Steps {
		if s.Kind == dsl.ActSplit {
			return true
		}
	}
	return false
}

// flushOutcomes writes the batch's clicks, variants and conversions, and queues
// the Conversions API events of the new conversions.
func (b *batch) flushOutcomes() error {
	o := b.out
	if o == nil {
		return nil
	}
	if len(o.clicks) > 0 {
		cs := make([]*store.Click, 0, len(o.clicks))
		for _, c := range o.clicks {
			cs = append(cs, c)
		}
		if err := b.tx.SaveClicks(cs); err != nil {
			return err
		}
	}
	if len(o.variants) > 0 {
		if err := b.tx.InsertRunVariants(o.variants); err != nil {
			return err
		}
	}
	if len(o.conversions) == 0 {
		return nil
	}
	// Each conversion carries the contact's latest click at the time: this
	// batch's, else the stored one.
	var need []string
	for _, c := range o.conversions {
		if o.clicks[c.Contact] == nil {
			need = append(need, c.Contact)
		}
	}
	stored := map[string]*store.Click{}
	if len(need) > 0 {
		var err error
		if stored, err = b.tx.Clicks(need); err != nil {
			return err
		}
	}
	for _, c := range o.conversions {
		k := o.clicks[c.Contact]
		if k == nil {
			k = stored[c.Contact]
		}
		if k != nil && !k.At.After(c.At) {
			c.SourceID, c.CtwaClid, c.ClickedAt = k.SourceID, k.CtwaClid, k.At
		}
	}
	fresh, err := b.tx.InsertConversions(o.conversions)
	if err != nil {
		return err
	}
	var events []*store.CAPIEvent
	for _, c := range fresh {
		flow, event := c.FlowID, c.Event
		afterCommit(b.tx, func() { b.e.m.Conversions.WithLabelValues(flow, event).Inc() })
		if ev := b.e.capiEvent(c, o.valueErrs[c], b.now); ev != nil {
			events = append(events, ev)
		}
	}
	if len(events) == 0 {
		return nil
	}
	if err := b.tx.InsertCAPIEvents(events); err != nil {
		return err
	}
	for _, ev := range events {
		status := ev.Status
		if status != store.CAPIQueued {
			afterCommit(b.tx, func() { b.e.m.CAPIEvents.WithLabelValues(status).Inc() })
		}
	}
	afterCommit(b.tx, b.e.notifyCAPI)
	return nil
}

// capiEvent is the Conversions API outbox row of a new conversion, or nil when
// it is not to be sent: no dataset configured, or no click id to attribute it
// to. A conversion past the click's attribution window is recorded as expired;
// one whose value could not be computed, as failed.
func (e *Engine) capiEvent(c *store.Conversion, valueErr string, now time.Time) *store.CAPIEvent {
	if !e.capiEnabled() || c.CtwaClid == "" {
		return nil
	}
	ev := &store.CAPIEvent{ConversionID: c.ID, EventID: eventID(c), DatasetID: e.opts.DatasetID, Status: store.CAPIQueued,
		NextAt: now, ExpiresAt: c.ClickedAt.Add(AttributionWindow), CreatedAt: now, UpdatedAt: now}
	body := capiBody{EventName: c.Event, EventTime: c.At.Unix(), ActionSource: "business_messaging", MessagingChannel: "whatsapp",
		EventID: ev.EventID, UserData: capiUserData{WABAID: e.opts.WABAID, CtwaClid: c.CtwaClid}}
	if c.Value != nil {
		body.CustomData = &capiCustomData{Value: *c.Value, Currency: c.Currency}
	}
	ev.Body, _ = json.Marshal(body) // plain strings and a finite number: always encodes
	switch {
	case !c.At.Before(ev.ExpiresAt):
		ev.Status, ev.Error = store.CAPIExpired, "the conversion came more than 7 days after the click: outside Meta's attribution window"
	case valueErr != "":
		ev.Status, ev.Error = store.CAPIFailed, "the value could not be computed: "+valueErr
	case c.Event == "Purchase" && c.Value == nil:
		ev.Status, ev.Error = store.CAPIFailed, "a Purchase needs a value"
	}
	return ev
}

// eventID is a conversion's Conversions API event id: derived from the
// conversion alone (run, step, contact, time), so it is the same however many
// times it is computed, and differs between databases that happen to share run
// ids.
func eventID(c *store.Conversion) string {
	h := sha256.Sum256([]byte(strconv.FormatInt(c.RunID, 10) + "\x00" + c.Step + "\x00" + c.Contact + "\x00" + c.FlowID +
		"\x00" + strconv.FormatInt(c.At.UnixMilli(), 10)))
	return "funnel-" + hex.EncodeToString(h[:12])
}

// capiBody is one event of a Conversions API request's data list, as Meta's
// Conversions API for Business Messaging takes it.
type capiBody struct {
	EventName        string          `json:"event_name"`
	EventTime        int64           `json:"event_time"`
	ActionSource     string          `json:"action_source"`
	MessagingChannel string          `json:"messaging_channel"`
	EventID          string          `json:"event_id"`
	UserData         capiUserData    `json:"user_data"`
	CustomData       *capiCustomData `json:"custom_data,omitempty"`
}

type capiUserData struct {
	WABAID   string `json:"whatsapp_business_account_id"`
	CtwaClid string `json:"ctwa_clid"`
}

type capiCustomData struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
}
