package store

import "time"

// Retention: what is kept only for history is deleted after a while, a chunk
// (up to limit rows) per call so the writer is never held long. Each purge
// goes through an index on the age it tests, so a call costs the rows it
// deletes, not the size of the table.

// PurgeInbox deletes up to limit inbound events processed before `before`.
// Keeping them that long is what deduplicates Meta's redeliveries (it retries
// for days); after that they only take space.
func (t *dbTx) PurgeInbox(before time.Time, limit int) (int, error) {
	return t.affected("PurgeInbox", ms(before), limit)
}

// PurgeRuns deletes up to limit runs that ended before `before`, with their
// timers (stale since the run ended) and the steps they recorded.
func (t *dbTx) PurgeRuns(before time.Time, limit int) (int, error) {
	ids, err := selectAll[idOnly](t, "EndedRuns", ms(before), limit)
	if err != nil {
		return 0, err
	}
	err = chunked(idList(ids), func(ids []int64) error {
		if _, err := t.exec("DeleteTimersOfRuns", ids); err != nil {
			return err
		}
		if _, err := t.exec("DeleteRunStepsOfRuns", ids); err != nil {
			return err
		}
		_, err := t.exec("DeleteRuns", ids)
		return err
	})
	return len(ids), err
}

// PurgeMessages deletes up to limit settled messages (not pending, claimed,
// sending or held) created before `before`. An `unknown` one that old is settled too:
// no status webhook comes for it any more.
func (t *dbTx) PurgeMessages(before time.Time, limit int) (int, error) {
	return t.affected("PurgeMessages", ms(before), limit)
}

// PurgeStatuses deletes up to limit status webhooks dated before `before`.
func (t *dbTx) PurgeStatuses(before time.Time, limit int) (int, error) {
	return t.affected("PurgeStatuses", ms(before), limit)
}

// PurgeOrphanStatuses deletes up to limit statuses dated before `before` that
// match no outbox message (messages another tool sent from the same number,
// or whose row is gone). They settle nothing; kept for the same time as the
// inbox that deduplicates them, then deleted, so they cannot pile up.
func (t *dbTx) PurgeOrphanStatuses(before time.Time, limit int) (int, error) {
	return t.affected("PurgeOrphanStatuses", ms(before), limit)
}

type idOnly struct{ ID int64 }

func (r *idOnly) ptrs() []any { return []any{&r.ID} }

func idList(rows []idOnly) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}
