package engine

import (
	"context"

	"github.com/funnel-dev/funnel/store"
)

// hookStore runs code after a write transaction commits: work claimed inside a
// transaction (messages handed straight to the sender) may only be acted on
// once that transaction is durable, and must be forgotten if it rolls back.
// The engine wraps its store in one; transactions reach the hooks through
// afterCommit.
type hookStore struct{ store.Store }

// hookTx is a transaction of a hookStore.
type hookTx struct {
	store.Tx
	hooks *[]func()
}

// Write runs fn in one transaction, then, if it committed, the hooks fn
// registered, in order. A fenced ctx (FencedContext) makes the transaction
// check the lease first.
func (s hookStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	var hooks []func()
	f, fenced := fenceOf(ctx)
	err := s.Store.Write(ctx, func(tx store.Tx) error {
		hooks = hooks[:0] // a store that retries fn starts over
		if fenced {
			if err := tx.Fence(f.name, f.holder); err != nil {
				return err
			}
		}
		return fn(hookTx{Tx: tx, hooks: &hooks})
	})
	if err != nil {
		return err
	}
	for _, h := range hooks {
		h()
	}
	return nil
}

// afterCommit registers f to run once tx has committed; it reports false (and
// f will not run) when tx is not a hookStore's.
func afterCommit(tx store.Tx, f func()) bool {
	h, ok := tx.(hookTx)
	if ok {
		*h.hooks = append(*h.hooks, f)
	}
	return ok
}

// within runs fn in tx, or in a write transaction of its own when tx is nil.
func (e *Engine) within(ctx context.Context, tx store.Tx, fn func(store.Tx) error) error {
	if tx != nil {
		return fn(tx)
	}
	return e.st.Write(ctx, fn)
}
