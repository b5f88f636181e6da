package engine

import (
	"fmt"
	"time"

	"github.com/funnel-dev/funnel/store"
)

// Marketing limits (docs/WHATSAPP.md, "Marketing limits"): Meta's per-user
// limit on marketing messages (error 131049) and the business portfolio's
// messaging limit (unique users reached by business-initiated messages in a
// rolling 24h).

// reachWindow is the messaging limit's rolling period.
const reachWindow = 24 * time.Hour

// MessagingLimit is the configured messaging limit (0: unlimited).
func (e *Engine) MessagingLimit() int { return e.opts.MessagingLimit }

// retry131049 turns the settlement of a message Meta refused with 131049
// into one more attempt after MarketingRetryAfter, when that is set and the
// message was not sent once more for it already. Meta's limit is per user
// and lifts after a while it does not publish: an immediate retry fails the
// same way, so the retry waits, and happens at most once.
func (e *Engine) retry131049(it *store.OutboxItem, ch *store.OutboxChange, now time.Time) bool {
	if e.opts.MarketingRetryAfter <= 0 || it.LimitRetries > 0 {
		return false
	}
	at := now.Add(e.opts.MarketingRetryAfter)
	ch.Status = store.OutPending
	ch.SetNextAttempt, ch.NextAttemptAt = true, at
	ch.SetLimitRetries, ch.LimitRetries = true, it.LimitRetries+1
	ch.LastError += "; sent once more at " + at.UTC().Format(time.RFC3339) + " (marketing_retry_after)"
	return true
}

// allowance applies the messaging limit to one claim round: a template
// going to a contact whose window is closed (a business-initiated message)
// reaches a new unique user unless the contact was reached in the last 24h;
// past the limit, the message waits, pending, until the earliest reach of the
// window is 24h old. A broadcast larger than the allowance left thus goes out
// as the allowance frees, over the following days, instead of failing.
type allowance struct {
	limit   int
	since   time.Time
	n       int
	oldest  time.Time
	reached map[string]bool
	mark    []string
	waiting int
}

func (e *Engine) newAllowance(tx store.Tx, contacts []string, now time.Time) (*allowance, error) {
	if e.opts.MessagingLimit <= 0 {
		return nil, nil
	}
	a := &allowance{limit: e.opts.MessagingLimit, since: now.Add(-reachWindow)}
	var err error
	if a.n, a.oldest, err = tx.Reached(a.since); err != nil {
		return nil, err
	}
	if a.reached, err = tx.ReachedOf(contacts, a.since); err != nil {
		return nil, err
	}
	return a, nil
}

// take reports whether a business-initiated message to contact may go out
// now; when not, until is when the next slot frees.
func (a *allowance) take(contact string, now time.Time) (ok bool, until time.Time) {
	if a.reached[contact] {
		return true, time.Time{}
	}
	if a.n >= a.limit {
		until = a.oldest.Add(reachWindow)
		if !until.After(now) {
			until = now.Add(time.Minute)
		}
		a.waiting++
		return false, until
	}
	a.n++
	a.reached[contact] = true
	a.mark = append(a.mark, contact)
	return true, time.Time{}
}

func (a *allowance) reason(until time.Time) string {
	return fmt.Sprintf("messaging limit reached (%d unique users per 24h): waiting for the allowance, next try %s",
		a.limit, until.UTC().Format(time.RFC3339))
}
