package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/funnel-dev/funnel/store"
)

// ingester commits inbox items for many concurrent requests in shared
// transactions: the first request in flight starts a commit, and everything that
// arrives meanwhile goes into the next one.
type ingester struct {
	enqueue func(context.Context, []store.InboxItem) (int, error)
	reqs    chan *ingestReq
	maxRows int
	wg      sync.WaitGroup

	// mu guards closed and the sends on reqs: Close takes it to close reqs, so a
	// request still running after the HTTP server's shutdown timed out gets
	// errClosed (a 503, Meta retries) instead of sending on a closed channel.
	mu     sync.RWMutex
	closed bool

	// The last commit's outcome, for /v1/status.
	lastMu    sync.Mutex
	lastErr   error
	lastErrAt time.Time
}

// errClosed answers a request that arrives after Close.
var errClosed = errors.New("server stopping: not stored")

type ingestReq struct {
	items []store.InboxItem
	done  chan error
}

func newIngester(enqueue func(context.Context, []store.InboxItem) (int, error), maxRows int) *ingester {
	in := &ingester{enqueue: enqueue, reqs: make(chan *ingestReq, 4096), maxRows: maxRows}
	in.wg.Add(1)
	go in.loop()
	return in
}

// Store commits items and returns once they are durable (or failed).
func (in *ingester) Store(ctx context.Context, items []store.InboxItem) error {
	r := &ingestReq{items: items, done: make(chan error, 1)}
	in.mu.RLock()
	if in.closed {
		in.mu.RUnlock()
		return errClosed
	}
	select {
	case in.reqs <- r: // the loop runs until Close has the lock: this send ends
	case <-ctx.Done():
		in.mu.RUnlock()
		return ctx.Err()
	}
	in.mu.RUnlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		// The commit may still succeed; the sender retries and dedup absorbs it.
		return ctx.Err()
	}
}

// Close stops accepting work and waits for the last commit. Requests that
// arrive later get errClosed. Calling it again does nothing.
func (in *ingester) Close() {
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		close(in.reqs)
	}
	in.mu.Unlock()
	in.wg.Wait()
}

func (in *ingester) loop() {
	defer in.wg.Done()
	for first := range in.reqs {
		group := []*ingestReq{first}
		rows := len(first.items)
	more:
		for rows < in.maxRows {
			select {
			case r, ok := <-in.reqs:
				if !ok {
					break more
				}
				group = append(group, r)
				rows += len(r.items)
			default:
				break more
			}
		}
		var all []store.InboxItem
		for _, r := range group {
			all = append(all, r.items...)
		}
		_, err := in.enqueue(context.Background(), all)
		in.lastMu.Lock()
		if err != nil {
			in.lastErr, in.lastErrAt = err, time.Now()
		} else {
			in.lastErr = nil
		}
		in.lastMu.Unlock()
		for _, r := range group {
			r.done <- err
		}
	}
}

func (in *ingester) isClosed() bool {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.closed
}

// failing returns the error of the last commit when it failed (nil once one
// succeeded since).
func (in *ingester) failing() (time.Time, error) {
	in.lastMu.Lock()
	defer in.lastMu.Unlock()
	return in.lastErrAt, in.lastErr
}
