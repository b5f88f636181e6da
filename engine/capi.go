package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// ConversionsAPI delivers conversion events to Meta's Conversions API (the
// Graph API in production, the whatsapptest fake in tests). Errors are
// classified with whatsapp.Classify.
type ConversionsAPI interface {
	SendEvents(ctx context.Context, datasetID string, events []json.RawMessage) error
}

// SendEvents posts events to the dataset.
func (g GraphChannel) SendEvents(ctx context.Context, datasetID string, events []json.RawMessage) error {
	_, err := g.Client.SendEvents(ctx, datasetID, events)
	return err
}

// capiBatch is how many Conversions API events one round claims; each is one
// request, so one bad event cannot fail the others.
const capiBatch = 50

// capiState is the Conversions API sender's pause: a token or permission
// error (the token lacks whatsapp_business_manage_events, say) stops it until
// ResumeConversions, without touching the message sender.
type capiState struct {
	mu     sync.Mutex
	paused string
	wake   chan struct{}
}

func (e *Engine) capiEnabled() bool { return e.opts.DatasetID != "" && e.opts.Conversions != nil }

func (e *Engine) notifyCAPI() {
	select {
	case e.capi.wake <- struct{}{}:
	default:
	}
}

// ConversionsPaused returns why the Conversions API sender is stopped ("" when
// it is not).
func (e *Engine) ConversionsPaused() string {
	e.capi.mu.Lock()
	defer e.capi.mu.Unlock()
	return e.capi.paused
}

// ResumeConversions clears a pause of the Conversions API sender.
func (e *Engine) ResumeConversions() {
	e.capi.mu.Lock()
	if e.capi.paused != "" {
		e.m.SenderPaused.WithLabelValues("conversions: " + e.capi.paused).Set(0)
		e.log.Info("conversions API sender resumed", "was", e.capi.paused)
	}
	e.capi.paused = ""
	e.capi.mu.Unlock()
	e.notifyCAPI()
}

func (e *Engine) pauseCAPI(reason string) {
	e.capi.mu.Lock()
	defer e.capi.mu.Unlock()
	if e.capi.paused == "" {
		e.log.Error("conversions API sender stopped: Meta refuses every event until this is fixed (a token with whatsapp_business_manage_events, the dataset id)", "reason", reason)
	}
	e.capi.paused = reason
	e.m.SenderPaused.WithLabelValues("conversions: " + reason).Set(1)
}

// RecoverConversions puts Conversions API events a crash left in their call
// back in the queue. Meta deduplicates events by event id, so one that did
// reach it is counted once however many times it is sent.
func (e *Engine) RecoverConversions(ctx context.Context) error {
	if !e.capiEnabled() {
		return nil
	}
	return e.st.Write(ctx, func(tx store.Tx) error {
		n, err := tx.RecoverCAPI(e.Now())
		if n > 0 {
			e.log.Warn("conversions API events interrupted by a restart are sent again (Meta deduplicates them by event id)", "events", n)
		}
		return err
	})
}

type capiJob struct {
	ev      *store.CAPIEvent
	err     error
	expired bool // the attribution window ended while it was queued: not sent
}

// SendConversions runs one round of the Conversions API sender: claim due
// events (queued → sending, committed before any call), post each, and record
// the outcomes with guarded transitions. It returns how many events it handled.
func (e *Engine) SendConversions(ctx context.Context) (int, error) {
	if !e.capiEnabled() || e.ConversionsPaused() != "" {
		return 0, nil
	}
	now := e.Now()
	if due, err := e.st.CAPIDue(ctx, now); err == nil && !due {
		return 0, nil
	}
	var evs []*store.CAPIEvent
	err := e.st.Write(ctx, func(tx store.Tx) error {
		var err error
		evs, err = tx.ClaimCAPI(now, capiBatch)
		return err
	})
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	jobs := make([]*capiJob, len(evs))
	for i, ev := range evs {
		jobs[i] = &capiJob{ev: ev}
		if e.ConversionsPaused() != "" {
			jobs[i].err = errNotAttempted
			continue
		}
		if !now.Before(ev.ExpiresAt) {
			jobs[i].expired = true
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.SendTimeout)
		jobs[i].err = e.opts.Conversions.SendEvents(cctx, ev.DatasetID, []json.RawMessage{ev.Body})
		cancel()
		if c := whatsapp.Classify(jobs[i].err); c == whatsapp.Fatal {
			e.pauseCAPI(fmt.Sprintf("error %d", whatsapp.ErrorCode(jobs[i].err)))
		}
	}
	return len(jobs), e.recordCAPI(ctx, jobs)
}

// recordCAPI settles each event by the class of its outcome, retrying the
// write until it takes (the outcomes exist only in memory until then).
func (e *Engine) recordCAPI(ctx context.Context, jobs []*capiJob) error {
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		var counts []string
		err := e.st.Write(context.WithoutCancel(ctx), func(tx store.Tx) error {
			counts = counts[:0]
			now := e.Now()
			sending := []string{store.CAPISending}
			changes := make([]*store.CAPIChange, 0, len(jobs))
			for _, j := range jobs {
				ev := j.ev
				ch := &store.CAPIChange{ID: ev.ID, From: sending, At: now}
				changes = append(changes, ch)
				if j.err == errNotAttempted {
					ch.Status = store.CAPIQueued
					continue
				}
				if j.expired {
					ch.Status = store.CAPIExpired
					ch.SetError, ch.Error = true, "the attribution window (7 days from the click) ended before it could be sent"
					counts = append(counts, "expired")
					continue
				}
				class := whatsapp.Classify(j.err)
				code := whatsapp.ErrorCode(j.err)
				attempts := ev.Attempts + 1
				ch.SetAttempts, ch.Attempts = true, attempts
				switch class {
				case whatsapp.OK:
					ch.Status, ch.SetSentAt, ch.SentAt = store.CAPISent, true, now
					ch.SetError = true // clears an earlier attempt's error
					counts = append(counts, "sent")
				case whatsapp.Retryable, whatsapp.Unknown, whatsapp.Pause:
					// Meta deduplicates by event id: sending again is safe
					// whatever happened to the first call.
					ch.SetError, ch.ErrorCode, ch.Error = true, code, errText(j.err)
					if attempts >= e.opts.MaxAttempts {
						ch.Status = store.CAPIFailed
						counts = append(counts, "failed")
					} else {
						ch.Status = store.CAPIQueued
						ch.SetNextAt, ch.NextAt = true, now.Add(max(time.Second, whatsapp.Backoff(whatsapp.Retryable, attempts-1, code, e.opts.Rand)))
						counts = append(counts, "retry")
					}
				case whatsapp.Fatal:
					ch.Status, ch.SetAttempts = store.CAPIQueued, false
					ch.SetError, ch.ErrorCode, ch.Error = true, code, errText(j.err)
					counts = append(counts, "paused")
				default: // Permanent: Meta's message says why
					ch.Status = store.CAPIFailed
					ch.SetError, ch.ErrorCode, ch.Error = true, code, errText(j.err)
					counts = append(counts, "failed")
				}
			}
			_, err := tx.ChangeCAPI(changes)
			return err
		})
		if err == nil {
			for _, c := range counts {
				e.m.CAPIEvents.WithLabelValues(c).Inc()
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		e.log.Error("recording conversions API results; retrying", "err", err, "events", len(jobs))
		sleep(ctx, backoff)
	}
}
