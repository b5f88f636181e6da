package engine_test

// The daemon's pipeline (Engine.Run): the messages an inbox batch writes are
// claimed for the sender in the batch's own transaction and handed to the send
// workers once it commits, instead of waiting for the send loop's next claim
// in a transaction of its own.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// txLog numbers the store's write transactions and records, per contact, the
// transaction its inbox event was processed in and the one its message was
// claimed in.
type txLog struct {
	mu        sync.Mutex
	seq       int
	processed map[string]int
	claimed   map[string]int
	dueReads  int // DueTimers queries
}

type loggedStore struct {
	store.Store
	log *txLog
}

func (s loggedStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	s.log.mu.Lock()
	s.log.seq++
	n := s.log.seq
	s.log.mu.Unlock()
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(loggedTx{Tx: tx, n: n, log: s.log}) })
}

type loggedTx struct {
	store.Tx
	n   int
	log *txLog
}

func (t loggedTx) MarkProcessed(items []*store.InboxItem, at time.Time) error {
	t.log.mu.Lock()
	for _, it := range items {
		t.log.processed[it.Contact] = t.n
	}
	t.log.mu.Unlock()
	return t.Tx.MarkProcessed(items, at)
}

func (t loggedTx) ClaimOutbox(now time.Time, limit int) ([]*store.OutboxItem, error) {
	items, err := t.Tx.ClaimOutbox(now, limit)
	t.log.mu.Lock()
	for _, it := range items {
		t.log.claimed[it.Contact] = t.n
	}
	t.log.mu.Unlock()
	return items, err
}

func (t loggedTx) DueTimers(now time.Time, limit int) ([]*store.Timer, error) {
	t.log.mu.Lock()
	t.log.dueReads++
	t.log.mu.Unlock()
	return t.Tx.DueTimers(now, limit)
}

// signalChannel accepts every message and reports each on a channel.
type signalChannel struct{ sent chan string }

func (c signalChannel) Send(_ context.Context, _ string, m *whatsapp.Message) (string, error) {
	c.sent <- m.To
	return "wamid.out." + m.To, nil
}

func TestRunClaimsNewMessagesInTheBatchThatWroteThem(t *testing.T) {
	r := newRig(t, []string{onHi("one", "", "  - id: m\n    send: \"hello ${contact.name}\"\n  - id: w\n    wait_for_reply: {timeout: 1h}\n")})
	log := &txLog{processed: map[string]int{}, claimed: map[string]int{}}
	ch := signalChannel{sent: make(chan string, 16)}
	opts := r.opts
	opts.Channel = ch
	eng := engine.New(loggedStore{Store: r.st, log: log}, opts)
	if err := eng.Load(r.ctx, r.proj, r.diags); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	contacts := []string{"5511900000001", "5511900000002", "5511900000003"}
	var items []store.InboxItem
	for _, c := range contacts {
		items = append(items, r.inboundItem(c, textMsg("hi"), r.now()))
	}
	if _, err := eng.Enqueue(r.ctx, items); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	deadline := time.After(30 * time.Second) // a hang, not a time being measured
	for len(got) < len(contacts) {
		select {
		case to := <-ch.sent:
			got[to] = true
		case <-deadline:
			t.Fatalf("only %d of %d messages reached the channel", len(got), len(contacts))
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, c := range contacts {
		p, cl := log.processed[c], log.claimed[c]
		if p == 0 || cl != p {
			t.Errorf("%s: event processed in transaction %d, its message claimed in transaction %d: want the same one", c, p, cl)
		}
	}
}
