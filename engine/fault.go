package engine

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/funnel-dev/funnel/store"
)

// panicError is a panic recovered while a batch was being processed: the
// transaction is rolled back and the batch's events are retried one by one, so
// that only the one that panics is set aside.
type panicError struct {
	value any
	where string
	stack string
}

func newPanicError(v any, where string) *panicError {
	return &panicError{value: v, where: where, stack: string(debug.Stack())}
}

func (p *panicError) Error() string { return fmt.Sprintf("internal error in %s: %v", p.where, p.value) }

// isEventFault reports whether a failed write is the fault of what it carried
// (a value the store refuses, a panic) rather than of the database (locked,
// full, gone): the same events would fail again, so the batch is split up
// instead of retried.
func isEventFault(err error) bool {
	var p *panicError
	return errors.As(err, &p) || errors.Is(err, store.ErrInvalid)
}

// faultText is the reason recorded for an event or run set aside.
func faultText(err error) string {
	var p *panicError
	if errors.As(err, &p) {
		return fmt.Sprintf("internal error: %v", p.value)
	}
	s := err.Error()
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "…"
	}
	return s
}
