package store

import (
	"context"
	"database/sql"
	"time"
)

// Reads go to the read-only pool, so support queries never wait for the writer.

func (s *SQLite) Contact(ctx context.Context, id string) (*Contact, error) {
	var r contactRow
	err := s.r.GetContext(ctx, &r, "SELECT "+contactCols+" FROM contacts WHERE wa_id = COALESCE((SELECT contact FROM contact_ids WHERE id = ?), ?)", id, id)
	if err == sql.ErrNoRows && id != "" {
		// A username is a last resort: it is unique at any one time, but may
		// have belonged to someone else before.
		err = s.r.GetContext(ctx, &r, "SELECT "+contactCols+" FROM contacts WHERE username != '' AND username IN (?, '@' || ?) ORDER BY updated_at DESC LIMIT 1", id, id)
	}
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.contact(), nil
}

func (s *SQLite) ContactsAfter(ctx context.Context, after string, limit int) ([]*Contact, error) {
	var rows []contactRow
	err := s.r.SelectContext(ctx, &rows, "SELECT "+contactCols+" FROM contacts WHERE wa_id > ? ORDER BY wa_id LIMIT ?", after, limit)
	out := make([]*Contact, len(rows))
	for i, r := range rows {
		out[i] = r.contact()
	}
	return out, err
}

func (s *SQLite) RunsOf(ctx context.Context, waID string, limit int) ([]*Run, error) {
	var rows []runRow
	err := s.r.SelectContext(ctx, &rows, "SELECT "+runCols+" FROM runs WHERE contact = ? ORDER BY id DESC LIMIT ?", waID, limit)
	return scanRuns(rows), err
}

func (s *SQLite) RunsWhere(ctx context.Context, flowID, status string, limit int) ([]*Run, error) {
	var rows []runRow
	err := s.r.SelectContext(ctx, &rows, "SELECT "+runCols+" FROM runs WHERE (? = '' OR flow_id = ?) AND (? = '' OR status = ?) ORDER BY id DESC LIMIT ?",
		flowID, flowID, status, status, limit)
	return scanRuns(rows), err
}

func (s *SQLite) OutboxOf(ctx context.Context, waID string, limit int) ([]*OutboxItem, error) {
	var rows []outboxRow
	err := s.r.SelectContext(ctx, &rows, "SELECT "+outboxCols+" FROM outbox WHERE contact = ? ORDER BY id DESC LIMIT ?", waID, limit)
	return scanOutbox(rows), err
}

func (s *SQLite) OutboxWhere(ctx context.Context, status string, limit int) ([]*OutboxItem, error) {
	var rows []outboxRow
	err := s.r.SelectContext(ctx, &rows, "SELECT "+outboxCols+" FROM outbox WHERE (? = '' OR status = ?) ORDER BY id DESC LIMIT ?", status, status, limit)
	return scanOutbox(rows), err
}

func (s *SQLite) InboxUnprocessed(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.GetContext(ctx, &n, "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL")
	return n, err
}

func (s *SQLite) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest sql.NullInt64
	row := s.r.QueryRowxContext(ctx, `SELECT
		(SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL),
		(SELECT COUNT(*) FROM outbox WHERE status = 'pending'),
		(SELECT COUNT(*) FROM outbox WHERE status = 'sending'),
		(SELECT COUNT(*) FROM timers),
		(SELECT MIN(due_at) FROM timers),
		(SELECT COUNT(*) FROM runs WHERE ended_at IS NULL),
		(SELECT COUNT(*) FROM contacts)`)
	if err := row.Scan(&st.InboxPending, &st.OutboxPending, &st.OutboxSending, &st.Timers, &oldest, &st.LiveRuns, &st.Contacts); err != nil {
		return st, err
	}
	st.OldestTimerDue = fromMS(oldest)
	return st, nil
}

func (s *SQLite) Ping(ctx context.Context) error {
	var one int
	return s.r.GetContext(ctx, &one, "SELECT 1")
}

// depthsSQL counts each queue through its partial or ordered index, stopping
// at the limit: its cost does not grow with the tables (TestDepths).
const depthsSQL = `SELECT
	(SELECT COUNT(*) FROM (SELECT 1 FROM inbox WHERE processed_at IS NULL LIMIT :n)),
	(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status = 'pending' LIMIT :n)),
	(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status IN ('pending', 'claimed', 'sending') LIMIT :n)),
	(SELECT COUNT(*) FROM (SELECT 1 FROM timers LIMIT :n)),
	(SELECT COUNT(*) FROM (SELECT 1 FROM timers WHERE due_at <= :now LIMIT :n)),
	(SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE ended_at IS NULL LIMIT :n)),
	(SELECT MIN(due_at) FROM timers),
	(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE status = 'held' LIMIT :n))`

func (s *SQLite) Depths(ctx context.Context, now time.Time, limit int64) (Depths, error) {
	d := Depths{Limit: limit}
	var oldest sql.NullInt64
	row := s.r.QueryRowxContext(ctx, depthsSQL, sql.Named("n", limit), sql.Named("now", ms(now)))
	var open int64
	if err := row.Scan(&d.InboxPending, &d.OutboxPending, &open, &d.Timers, &d.TimersDue, &d.LiveRuns, &oldest, &d.OutboxHeld); err != nil {
		return d, err
	}
	// Claimed and sending have no index of their own: they are the open
	// messages that are not pending (exact while fewer than limit are open).
	d.OutboxSending = max(0, open-d.OutboxPending)
	d.OldestTimerDue = fromMS(oldest)
	return d, nil
}

func (s *SQLite) FlowVersion(ctx context.Context, id int64) (*FlowVersion, error) {
	var r versionRow
	err := s.r.GetContext(ctx, &r, "SELECT id, flow_id, hash, file, source, templates, created_at FROM flow_versions WHERE id = ?", id)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.version(), nil
}
