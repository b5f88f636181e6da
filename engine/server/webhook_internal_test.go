package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
	"github.com/funnel-dev/funnel/store"
)

// gatedStore holds every Enqueue until the gate opens, telling when one waits.
type gatedStore struct {
	store.Store
	entered chan struct{}
	gate    chan struct{}
}

func (s gatedStore) Enqueue(ctx context.Context, items []store.InboxItem) (int, error) {
	s.entered <- struct{}{}
	<-s.gate
	return s.Store.Enqueue(ctx, items)
}

// A webhook waiting for its commit holds no body slot: the slots bound the
// bodies being read, and a slow disk must not turn new webhooks away with 503.
func TestWebhookWaitingForTheStoreHoldsNoBodySlot(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "funnel.db"), store.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gs := gatedStore{Store: st, entered: make(chan struct{}, 4), gate: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(gs, engine.Options{Logger: log})
	fake := whatsapptest.New(t, whatsapptest.Options{})
	s := New(Config{AppSecret: fake.AppSecret(), MaxConcurrentBodies: 1}, eng, prometheus.NewRegistry(), log)
	hs := httptest.NewServer(s.Handler())
	defer func() { hs.Close(); s.Close() }()

	body, sig, err := fake.TextWebhook("16505550111", "Ana", "hi")
	if err != nil {
		t.Fatal(err)
	}
	status := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", hs.URL+"/webhook", bytes.NewReader(body))
		req.Header.Set(whatsapp.SignatureHeader, sig)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			status <- 0
			return
		}
		res.Body.Close()
		status <- res.StatusCode
	}()
	select {
	case <-gs.entered: // the webhook is read, parsed and waiting for its commit
	case <-time.After(30 * time.Second): // a hang, not a measured time
		t.Fatal("the webhook never reached the store")
	}
	if n := len(s.bodies); n != 0 {
		t.Errorf("%d body slots held by a webhook waiting for the store, want 0", n)
	}
	close(gs.gate)
	if got := <-status; got != http.StatusOK {
		t.Fatalf("webhook answered %d, want 200", got)
	}
}
