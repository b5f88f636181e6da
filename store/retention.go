package store

import "time"

// Retention: what is kept only for history is deleted after a while, a chunk
// (up to limit rows) per call so the writer is never held long. Each purge
// goes through an index on the age it tests, so a call costs the rows it
// deletes, not the size of the table.

// PurgeInbox deletes up to limit inbound events processed before `before`.
// Keeping them that long is what deduplicates Meta's redeliveries (it retries
// for days); after that they only take space.
func (t *sqliteTx) PurgeInbox(before time.Time, limit int) (int, error) {
	return t.purge("DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ? LIMIT ?)", ms(before), limit)
}

// PurgeRuns deletes up to limit runs that ended before `before`, with their
// timers (stale since the run ended).
func (t *sqliteTx) PurgeRuns(before time.Time, limit int) (int, error) {
	var ids []int64
	if err := t.tx.SelectContext(t.ctx, &ids, "SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at < ? LIMIT ?", ms(before), limit); err != nil {
		return 0, err
	}
	err := chunked(ids, func(ids []int64) error {
		if _, err := t.exec("DELETE FROM timers WHERE run_id IN "+in(len(ids)), intArgs(ids)...); err != nil {
			return err
		}
		_, err := t.exec("DELETE FROM runs WHERE id IN "+in(len(ids)), intArgs(ids)...)
		return err
	})
	return len(ids), err
}

// PurgeMessages deletes up to limit settled messages (not pending, claimed,
// sending or held) created before `before`. An `unknown` one that old is settled too:
// no status webhook comes for it any more.
func (t *sqliteTx) PurgeMessages(before time.Time, limit int) (int, error) {
	return t.purge(`DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < ?
		AND status NOT IN ('pending', 'claimed', 'sending', 'held') LIMIT ?)`, ms(before), limit)
}

// PurgeStatuses deletes up to limit status webhooks dated before `before`.
func (t *sqliteTx) PurgeStatuses(before time.Time, limit int) (int, error) {
	return t.purge("DELETE FROM message_statuses WHERE id IN (SELECT id FROM message_statuses WHERE at < ? LIMIT ?)", ms(before), limit)
}

func (t *sqliteTx) purge(q string, before int64, limit int) (int, error) {
	res, err := t.exec(q, before, limit)
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
	res, err := t.exec("DELETE FROM message_statuses WHERE id IN (SELECT id FROM message_statuses WHERE outbox_id IS NULL AND at < ? LIMIT ?)", ms(before), limit)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
