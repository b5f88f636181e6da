package store

import "time"

// PurgeInbox deletes up to limit inbound events processed before `before`.
// Keeping them that long is what deduplicates Meta's redeliveries (it retries
// for days); after that they only take space.
func (t *sqliteTx) PurgeInbox(before time.Time, limit int) (int, error) {
	res, err := t.exec("DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ? ORDER BY id LIMIT ?)", ms(before), limit)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PurgeOrphanStatuses deletes up to limit statuses dated before `before` that
// match no outbox message (messages another tool sent from the same number,
// or whose row is gone). They settle nothing; kept for the same time as the
// inbox that deduplicates them, then deleted, so they cannot pile up.
func (t *sqliteTx) PurgeOrphanStatuses(before time.Time, limit int) (int, error) {
	res, err := t.exec("DELETE FROM message_statuses WHERE id IN (SELECT id FROM message_statuses WHERE outbox_id IS NULL AND at < ? ORDER BY id LIMIT ?)", ms(before), limit)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
