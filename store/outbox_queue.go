package store

import "time"

// openStatuses repeats the condition of the outbox_contact_open index, so a
// query naming it exactly can use that index (SQLite uses a partial index only
// when the query's WHERE contains the index's own terms).
const openStatuses = "status IN ('pending', 'claimed', 'sending')"

// OpenOutboxCounts counts each contact's messages not yet settled (pending,
// claimed or sending), through the per-contact index. A contact with none is
// absent from the map.
func (t *sqliteTx) OpenOutboxCounts(contacts []string) (map[string]int, error) {
	out := map[string]int{}
	err := chunked(contacts, func(ids []string) error {
		rows, err := t.tx.QueryxContext(t.ctx, "SELECT contact, COUNT(*) FROM outbox WHERE "+openStatuses+" AND contact IN "+in(len(ids))+" GROUP BY contact", strArgs(ids)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			var n int
			if err := rows.Scan(&c, &n); err != nil {
				return err
			}
			out[c] = n
		}
		return rows.Err()
	})
	return out, err
}

// DeferPendingOutbox moves every pending message of a contact due before
// until to until: the contact is paced (one message per interval), and its
// queued messages then leave the due part of the outbox_pending index instead
// of being read and skipped by every claim until then.
func (t *sqliteTx) DeferPendingOutbox(contact string, until, at time.Time) (int, error) {
	res, err := t.exec("UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE "+openStatuses+" AND contact = ? AND status = 'pending' AND next_attempt_at < ?",
		ms(until), ms(at), contact, ms(until))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
