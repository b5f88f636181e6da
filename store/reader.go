package store

import (
	"context"
	"database/sql"
	"time"
)

// Reads go to the read pool, so support queries never wait for the writer.

func (s *DB) Contact(ctx context.Context, id string) (*Contact, error) {
	var r contactRow
	err := s.get(ctx, &r, "ContactByID", id)
	if err == sql.ErrNoRows && id != "" {
		// A username is a last resort: it is unique at any one time, but may
		// have belonged to someone else before.
		err = s.get(ctx, &r, "ContactByUsername", id)
	}
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.contact(), nil
}

func (s *DB) ContactsAfter(ctx context.Context, after string, limit int) ([]*Contact, error) {
	var rows []contactRow
	err := s.selectR(ctx, &rows, "ContactsPage", after, limit)
	out := make([]*Contact, len(rows))
	for i, r := range rows {
		out[i] = r.contact()
	}
	return out, err
}

func (s *DB) RunsOf(ctx context.Context, waID string, limit int) ([]*Run, error) {
	var rows []runRow
	err := s.selectR(ctx, &rows, "RunsOf", waID, limit)
	return scanRuns(rows), err
}

func (s *DB) RunsWhere(ctx context.Context, flowID, status string, limit int) ([]*Run, error) {
	var rows []runRow
	err := s.selectR(ctx, &rows, "RunsWhere", flowID, status, limit)
	return scanRuns(rows), err
}

func (s *DB) OutboxOf(ctx context.Context, waID string, limit int) ([]*OutboxItem, error) {
	var rows []outboxRow
	err := s.selectR(ctx, &rows, "OutboxOf", waID, limit)
	return scanOutbox(rows), err
}

func (s *DB) OutboxWhere(ctx context.Context, status string, limit int) ([]*OutboxItem, error) {
	var rows []outboxRow
	err := s.selectR(ctx, &rows, "OutboxWhere", status, limit)
	return scanOutbox(rows), err
}

func (s *DB) InboxUnprocessed(ctx context.Context) (int64, error) {
	var n int64
	err := s.get(ctx, &n, "InboxUnprocessed")
	return n, err
}

func (s *DB) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest sql.NullInt64
	if err := s.scanR(ctx, "Stats", nil, &st.InboxPending, &st.OutboxPending, &st.OutboxSending, &st.Timers, &oldest, &st.LiveRuns, &st.Contacts); err != nil {
		return st, err
	}
	st.OldestTimerDue = fromMS(oldest)
	return st, nil
}

func (s *DB) Ping(ctx context.Context) error {
	var one int
	return s.get(ctx, &one, "Ping")
}

// Depths counts each queue through its partial or ordered index, stopping
// at the limit: its cost does not grow with the tables (TestDepths).
func (s *DB) Depths(ctx context.Context, now time.Time, limit int64) (Depths, error) {
	d := Depths{Limit: limit}
	var oldest sql.NullInt64
	var open int64
	if err := s.scanR(ctx, "Depths", []any{limit, ms(now)}, &d.InboxPending, &d.OutboxPending, &open, &d.Timers, &d.TimersDue, &d.LiveRuns, &oldest, &d.OutboxHeld, &d.OutboxWaiting); err != nil {
		return d, err
	}
	// Claimed and sending have no index of their own: they are the open
	// messages that are not pending (exact while fewer than limit are open).
	d.OutboxSending = max(0, open-d.OutboxPending)
	d.OldestTimerDue = fromMS(oldest)
	return d, nil
}

func (s *DB) FlowVersion(ctx context.Context, id int64) (*FlowVersion, error) {
	var r versionRow
	err := s.get(ctx, &r, "FlowVersion", id)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.version(), nil
}
