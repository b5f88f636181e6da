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
