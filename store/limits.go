package store

import (
	"context"
	"database/sql"
	"time"
)

// Reached counts the unique users business-initiated messages reached since
// `since` (the messaging limit's rolling 24h), and when the earliest of them
// was reached (zero when none): its slot frees 24h after that.
func (t *dbTx) Reached(since time.Time) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	rows, err := t.queryRows("ReachedCount", ms(since))
	if err != nil {
		return 0, time.Time{}, err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&n, &oldest); err != nil {
			return 0, time.Time{}, err
		}
	}
	return n, fromMS(oldest), rows.Err()
}

// ReachedOf says which of these contacts were reached since `since`: another
// message to them does not count against the limit again.
func (t *dbTx) ReachedOf(contacts []string, since time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	err := chunked(contacts, func(ids []string) error {
		rows, err := t.queryRows("ReachedOf", ids, ms(since))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				return err
			}
			out[c] = true
		}
		return rows.Err()
	})
	return out, err
}

// MarkReached records that a business-initiated message reached contacts at
// `at`, and forgets those reached 24h or more before it.
func (t *dbTx) MarkReached(contacts []string, at time.Time) error {
	for _, c := range contacts {
		if _, err := t.exec("MarkReached", c, ms(at)); err != nil {
			return err
		}
	}
	if len(contacts) > 0 {
		_, err := t.exec("PurgeReached", ms(at.Add(-24*time.Hour)))
		return err
	}
	return nil
}

type marketingLimitedRow struct {
	FlowID  string `db:"flow_id"`
	Contact string `db:"contact"`
	Refused int    `db:"refused"`
	Retried int    `db:"retried"`
	Sent    int    `db:"delivered"`
}

// MarketingLimited counts, per flow and contact, the messages queued since
// `since` that Meta refused with 131049 (its per-user marketing limit), up to
// limit rows.
func (s *DB) MarketingLimited(ctx context.Context, since time.Time, limit int) ([]MarketingLimited, error) {
	var rows []marketingLimitedRow
	if err := s.selectR(ctx, &rows, "MarketingLimited", ms(since), limit); err != nil {
		return nil, err
	}
	out := make([]MarketingLimited, len(rows))
	for i, r := range rows {
		out[i] = MarketingLimited(r)
	}
	return out, nil
}
