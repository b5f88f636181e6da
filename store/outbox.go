package store

import "time"

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

	// SetLimitRetries writes limit_retries (times sent once more after a
	// 131049); SetAllowance marks the message as waiting for the messaging
	// limit's allowance (or no longer).
	SetLimitRetries bool
	LimitRetries    int
	SetAllowance    bool
	Allowance       bool

	// ClearProvider forgets the provider id: the message goes out again as a
	// new one, whose statuses must be accepted.
	ClearProvider bool

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
func (t *dbTx) ChangeOutbox(cs []*OutboxChange) (int, error) {
	n := 0
	for i, c := range cs {
		if c.OrElse && i > 0 && cs[i-1].Applied {
			c.Applied = false
			continue
		}
		k, err := t.affected("ChangeOutbox", c.args()...)
		if err != nil {
			return n, err
		}
		c.Applied = k > 0
		if c.Applied {
			n++
		}
	}
	return n, nil
}

// args are the arguments of the ChangeOutbox query: a flag and a value per
// column the transition may write, then the guard.
func (c *OutboxChange) args() []any {
	return []any{ms(c.At), c.Status, c.Fallback,
		c.SetSentAs, c.SentAs,
		c.SetError, c.ErrorCode, c.LastError,
		c.Provider,
		c.SetAttempts, c.Attempts,
		c.SetNextAttempt, ms(c.NextAttemptAt),
		c.SetSentAt, nullMS(c.SentAt),
		c.ID, c.From, c.Template,
		c.SetLimitRetries, c.LimitRetries,
		c.SetAllowance, c.Allowance,
		c.ClearProvider}
}
