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

// resendableSQL selects the messages left unknown that are due to be sent once
// more: unknown since `after` ago, not sent once more already, and with no
// inbound event waiting that arrived by their deadline (a status for one of
// them may be among those: it is processed first).
const resendableSQL = `status = 'unknown' AND resends = 0 AND updated_at <= MIN(:now,
	COALESCE((SELECT received_at FROM inbox WHERE processed_at IS NULL ORDER BY id LIMIT 1), :now)) - :after`

const dueSQL = `SELECT
	EXISTS (SELECT 1 FROM inbox WHERE processed_at IS NULL),
	EXISTS (SELECT 1 FROM timers WHERE due_at <= :now),
	EXISTS (SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now),
	:after > 0 AND EXISTS (SELECT 1 FROM outbox WHERE ` + resendableSQL + `),
	EXISTS (SELECT 1 FROM schedules WHERE firing_at IS NOT NULL OR next_at <= :now)`

// Due reads which loops have work at now; resendAfter is the engine's delay
// before a message left unknown is sent once more (≤ 0: never).
func (s *SQLite) Due(ctx context.Context, now time.Time, resendAfter time.Duration) (Due, error) {
	var d Due
	row := s.r.QueryRowxContext(ctx, dueSQL, namedArgs(now, resendAfter)...)
	err := row.Scan(&d.Inbox, &d.Timers, &d.Outbox, &d.Resend, &d.Schedules)
	return d, err
}

func namedArgs(now time.Time, after time.Duration) []any {
	return []any{sqlNamed("now", ms(now)), sqlNamed("after", after.Milliseconds())}
}

// ResendUnknown moves up to limit messages left unknown for `after` (see
// resendableSQL) back to pending, to be sent once more, with reason as their
// last error. It returns how many.
func (t *sqliteTx) ResendUnknown(now time.Time, after time.Duration, limit int, reason string) (int, error) {
	if after <= 0 {
		return 0, nil
	}
	res, err := t.exec(`UPDATE outbox SET status = 'pending', resends = resends + 1, next_attempt_at = :now,
		updated_at = :now, last_error = :reason
		WHERE id IN (SELECT id FROM outbox WHERE `+resendableSQL+` ORDER BY updated_at, id LIMIT :limit)`,
		append(namedArgs(now, after), sqlNamed("reason", reason), sqlNamed("limit", limit))...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func sqlNamed(name string, v any) any { return sql.Named(name, v) }

// NextResend is the earliest time after `after` when a message now unknown
// becomes due to be sent once more (the simulator's clock stops there).
func (t *sqliteTx) NextResend(after time.Time, resendAfter time.Duration) (time.Time, bool, error) {
	if resendAfter <= 0 {
		return time.Time{}, false, nil
	}
	var at sql.NullInt64
	err := t.tx.GetContext(t.ctx, &at, "SELECT MIN(updated_at) FROM outbox WHERE status = 'unknown' AND resends = 0 AND updated_at > ?",
		ms(after)-resendAfter.Milliseconds())
	if err != nil || !at.Valid {
		return time.Time{}, false, err
	}
	return time.UnixMilli(at.Int64 + resendAfter.Milliseconds()).UTC(), true, nil
}
