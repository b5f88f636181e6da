package server

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/funnel-dev/funnel/store"
)

// TestIngesterStoreAfterClose is the shutdown that timed out: http.Server's
// Shutdown gave up on a slow request, the daemon closed the ingester, and the
// request then tried to store its events. It gets an error (its webhook a 503),
// never a "send on closed channel" panic.
func TestIngesterStoreAfterClose(t *testing.T) {
	var mu sync.Mutex
	var stored int
	in := newIngester(func(_ context.Context, items []store.InboxItem) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		stored += len(items)
		return len(items), nil
	}, 10)
	item := []store.InboxItem{{Kind: "message", Key: "wamid.1"}}
	if err := in.Store(context.Background(), item); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if err := in.Store(context.Background(), item); !errors.Is(err, errClosed) {
		t.Fatalf("Store after Close = %v, want errClosed", err)
	}
	in.Close() // twice: nothing
	if stored != 1 {
		t.Fatalf("stored %d items, want 1", stored)
	}
}

// TestIngesterCloseRacesStores closes while requests keep arriving: each one is
// either stored or refused, none panics or hangs (run with -race).
func TestIngesterCloseRacesStores(t *testing.T) {
	in := newIngester(func(_ context.Context, items []store.InboxItem) (int, error) { return len(items), nil }, 10)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < 50; j++ {
				err := in.Store(context.Background(), []store.InboxItem{{Kind: "message"}})
				if err != nil && !errors.Is(err, errClosed) {
					t.Errorf("Store: %v", err)
					return
				}
			}
		}()
	}
	close(start)
	in.Close()
	wg.Wait()
}
