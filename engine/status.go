package engine

import (
	"encoding/json"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// statusRank orders delivery statuses: a later webhook never moves a message
// back (read before delivered is common), and failed only overrides sent.
var statusRank = map[string]int{
	store.OutClaimed: 1, store.OutSending: 1, store.OutSent: 2, store.OutFailed: 3, store.OutDelivered: 4, store.OutRead: 5,
}

// loadOutbox fetches the outbox rows the batch's statuses refer to.
func (b *batch) loadOutbox(ids []int64, providerIDs []string) error {
	b.outboxByID = map[int64]*store.OutboxItem{}
	b.outboxByProvider = map[string]*store.OutboxItem{}
	if len(ids) > 0 {
		m, err := b.tx.OutboxByIDs(ids)
		if err != nil {
			return err
		}
		b.outboxByID = m
	}
	if len(providerIDs) > 0 {
		m, err := b.tx.OutboxByProvider(providerIDs)
		if err != nil {
			return err
		}
		b.outboxByProvider = m
	}
	return nil
}

// handleStatus reconciles a delivery status with the outbox row it belongs to
// (found through biz_opaque_callback_data, else the message id). A `failed` status
// is how Meta reports most refusals after accepting a send, 131047 included.
func (b *batch) handleStatus(in *Inbound) string {
	var st whatsapp.Status
	if err := json.Unmarshal(in.Status, &st); err != nil {
		return "error: " + err.Error()
	}
	b.e.m.StatusesIn.WithLabelValues(statusLabel(st.Status)).Inc()
	var item *store.OutboxItem
	if id := ParseCallbackData(st.BizOpaqueCallbackData); id != 0 {
		item = b.outboxByID[id]
	}
	if item == nil {
		item = b.outboxByProvider[st.ID]
	}
	code := 0
	if len(st.Errors) > 0 {
		code = st.Errors[0].Code
	}
	rec := &store.StatusRecord{ProviderID: st.ID, Status: st.Status, At: in.Time, ErrorCode: code, Payload: in.Status}
	b.statuses = append(b.statuses, rec)
	if item == nil {
		return ResultStatusOld
	}
	// A status names the recipient by every id Meta has: the contact learns
	// the ones it lacked (its BSUID, most often), so a later message that
	// carries only those still finds it.
	if c := b.contacts[item.Contact]; c != nil && (in.UserID != "" || in.ParentUserID != "") {
		if other := b.known(in.UserID, in.ParentUserID); other == nil || other == c {
			b.attach(c, "", in.UserID, in.ParentUserID, false)
		}
		if in.Username != "" && c.Username != in.Username {
			c.Username = in.Username
			b.touchContact(c)
		}
	}
	rec.OutboxID = item.ID
	if code == 131047 {
		b.e.m.Seen131047.Inc()
	}
	// A status of another attempt of the message (the first of a message sent
	// once more, the free-form one a fallback replaced) is recorded only.
	if item.ProviderID != "" && st.ID != "" && st.ID != item.ProviderID {
		return ResultStatusOld
	}
	if statusRank[st.Status] <= statusRank[item.Status] {
		return ResultStatusOld
	}
	ch := &store.OutboxChange{ID: item.ID, From: statusesBelow(st.Status), Status: st.Status, At: b.now, Provider: st.ID}
	if item.ProviderID == "" {
		item.ProviderID = st.ID
	}
	item.Status = st.Status
	if st.Status == store.OutFailed {
		item.ErrorCode = code
		if len(st.Errors) > 0 {
			item.LastError = st.Errors[0].Title + ": " + st.Errors[0].Message
		}
		if code == whatsapp.CodeBSUIDUnsupported {
			item.LastError = ReasonBSUIDUnsupported + " (" + item.LastError + ")"
		}
		ch.SetError, ch.ErrorCode, ch.LastError = true, item.ErrorCode, item.LastError
		if code == whatsapp.CodeEcosystemHealth {
			b.e.m.MarketingLimited.WithLabelValues(item.FlowID).Inc()
			if b.e.retry131049(item, ch, b.now) {
				// Sent once more later, as a new message: its own statuses
				// must match, not this attempt's.
				ch.ClearProvider = true
				item.Status, item.ProviderID, item.LimitRetries = store.OutPending, "", item.LimitRetries+1
				b.outboxChanges = append(b.outboxChanges, ch)
				return ResultStatus
			}
		}
		if code == 131047 && switchToFallback(item) {
			ch.Status, ch.Fallback = store.OutPending, true
			b.outboxChanges = append(b.outboxChanges, ch)
			b.e.notifySender()
			return ResultStatus
		}
	}
	item.UpdatedAt = b.now
	b.outboxChanges = append(b.outboxChanges, ch)
	if st.Status == store.OutDelivered || st.Status == store.OutRead {
		b.marks = append(b.marks, &store.StepMark{RunID: item.RunID, Step: item.Step, Kind: st.Status, At: in.Time})
	}
	return ResultStatus
}

// statusesBelow lists the statuses a delivery status may move a message from:
// those it ranks above, and the ones outside the ranking a status settles
// (pending: a retry or a second attempt Meta turns out to have accepted;
// unknown: a send whose outcome was lost).
func statusesBelow(status string) []string {
	from := []string{store.OutPending, store.OutUnknown}
	for _, s := range []string{store.OutClaimed, store.OutSending, store.OutSent, store.OutFailed, store.OutDelivered, store.OutRead} {
		if statusRank[s] < statusRank[status] {
			from = append(from, s)
		}
	}
	return from
}
