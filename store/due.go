package store

import (
	"context"
	"database/sql"
	"time"
)

// Due says which of the engine's loops have work now. The loops poll a few
// times a second when idle; they ask here, on the read pool, and take the
// write lock only when there is something to write.
type Due struct {
	Inbox     bool // an inbound event waits
	Timers    bool // a timer is due
	Outbox    bool // a message is due to be sent
	Resend    bool // a message left unknown is due to be sent once more
	Schedules bool // a schedule trigger is due or firing
}

// Any reports whether any loop has work.
func (d Due) Any() bool { return d.Inbox || d.Timers || d.Outbox || d.Resend || d.Schedules }

// Due reads which loops have work at now; resendAfter is the engine's delay
// before a message left unknown is sent once more (≤ 0: never).
func (s *DB) Due(ctx context.Context, now time.Time, resendAfter time.Duration) (Due, error) {
	var d Due
	err := s.scanR(ctx, "Due", []any{ms(now), resendAfter.Milliseconds()}, &d.Inbox, &d.Timers, &d.Outbox, &d.Resend, &d.Schedules)
	return d, err
}

// ResendUnknown moves up to limit messages left unknown for `after`, with no
// inbound event waiting that arrived by their deadline, back to pending, to
// be sent once more, with reason as their last error. It returns how many.
func (t *dbTx) ResendUnknown(now time.Time, after time.Duration, limit int, reason string) (int, error) {
	if after <= 0 {
		return 0, nil
	}
	return t.affected("ResendUnknown", ms(now), reason, after.Milliseconds(), limit)
}

// NextResend is the earliest time after `after` when a message now unknown
// becomes due to be sent once more (the simulator's clock stops there).
func (t *dbTx) NextResend(after time.Time, resendAfter time.Duration) (time.Time, bool, error) {
	if resendAfter <= 0 {
		return time.Time{}, false, nil
	}
	var at sql.NullInt64
	err := t.get(&at, "NextResend", ms(after)-resendAfter.Milliseconds())
	if err != nil || !at.Valid {
		return time.Time{}, false, err
	}
	return time.UnixMilli(at.Int64 + resendAfter.Milliseconds()).UTC(), true, nil
}
