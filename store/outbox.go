package store

import (
	"strings"
	"time"
)

// OutboxChange is one guarded transition of a message: it applies only while
// the row's status is one of From (and its provider id is empty or Provider,
// when Provider is set), and writes only the columns the transition owns. The
// sender and the status webhooks change the same rows from different
// transactions; a guard instead of a write-back of a copy read earlier is what
// keeps one from undoing the other.
type OutboxChange struct {
	ID     int64
	From   []string  // the statuses the row may be in
	Status string    // the new status ("" keeps it)
	At     time.Time // updated_at

	// Provider, when set, guards (the row has no provider id yet, or this one)
	// and is written when the row has none.
	Provider string

	SetSentAs bool
	SentAs    string

	SetError  bool // error_code and last_error
	ErrorCode int
	LastError string

	SetAttempts bool
	Attempts    int

	SetNextAttempt bool
	NextAttemptAt  time.Time

	SetSentAt bool
	SentAt    time.Time

	// Template, when set, records the template the message waits for (a
	// message held for it).
	Template string

	// Fallback swaps in the row's fallback template (payload, kind, category),
	// to be sent as "fallback"; the row must be free-form with a fallback.
	Fallback bool

	// OrElse marks a change tried only when the one before it in the list did
	// not apply (a fallback transition for the same row).
	OrElse bool

	// Applied reports, after ChangeOutbox, whether the guard held.
	Applied bool
}

// ChangeOutbox applies guarded transitions in order and returns how many
// applied (each change's Applied says which).
func (t *sqliteTx) ChangeOutbox(cs []*OutboxChange) (int, error) {
	n := 0
	for i, c := range cs {
		if c.OrElse && i > 0 && cs[i-1].Applied {
			c.Applied = false
			continue
		}
		q, args := c.sql()
		res, err := t.exec(q, args...)
		if err != nil {
			return n, err
		}
		k, _ := res.RowsAffected()
		c.Applied = k > 0
		if c.Applied {
			n++
		}
	}
	return n, nil
}

// sql builds the statement: its text depends only on which columns are set
// and how many statuses guard it, so the statement cache stays small.
func (c *OutboxChange) sql() (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 16)
	b.WriteString("UPDATE outbox SET updated_at = ?")
	args = append(args, ms(c.At))
	if c.Status != "" {
		b.WriteString(", status = ?")
		args = append(args, c.Status)
	}
	if c.Fallback {
		b.WriteString(", kind = 'template', payload = fallback, fallback = NULL, category = fallback_category, sent_as = 'fallback', provider_id = ''")
	}
	if c.Provider != "" && !c.Fallback {
		b.WriteString(", provider_id = CASE WHEN provider_id = '' THEN ? ELSE provider_id END")
		args = append(args, c.Provider)
	}
	if c.SetSentAs && !c.Fallback {
		b.WriteString(", sent_as = ?")
		args = append(args, c.SentAs)
	}
	if c.SetError {
		b.WriteString(", error_code = ?, last_error = ?")
		args = append(args, c.ErrorCode, c.LastError)
	}
	if c.SetAttempts {
		b.WriteString(", attempts = ?")
		args = append(args, c.Attempts)
	}
	if c.SetNextAttempt {
		b.WriteString(", next_attempt_at = ?")
		args = append(args, ms(c.NextAttemptAt))
	}
	if c.SetSentAt {
		b.WriteString(", sent_at = ?")
		args = append(args, nullMS(c.SentAt))
	}
	if c.Template != "" {
		b.WriteString(", template = ?")
		args = append(args, c.Template)
	}
	b.WriteString(" WHERE id = ? AND status IN " + in(len(c.From)))
	args = append(args, c.ID)
	for _, s := range c.From {
		args = append(args, s)
	}
	if c.Provider != "" {
		b.WriteString(" AND (provider_id = '' OR provider_id = ?)")
		args = append(args, c.Provider)
	}
	if c.Fallback {
		b.WriteString(" AND kind = 'freeform' AND fallback IS NOT NULL")
	}
	return b.String(), args
}
