package store

import "time"

// OpenOutboxCounts counts each contact's messages not yet settled (pending,
// claimed or sending), through the per-contact index. A contact with none is
// absent from the map.
func (t *dbTx) OpenOutboxCounts(contacts []string) (map[string]int, error) {
	out := map[string]int{}
	err := chunked(contacts, func(ids []string) error {
		rows, err := t.queryRows("OpenOutboxCounts", ids)
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
func (t *dbTx) DeferPendingOutbox(contact string, until, at time.Time) (int, error) {
	return t.affected("DeferPendingOutbox", ms(until), ms(at), contact)
}
