package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// StoreDeadline bounds how long a webhook waits for its events to be stored.
const StoreDeadline = 5 * time.Second

// verify answers Meta's subscription challenge.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	challenge, ok := whatsapp.VerifyChallenge(r.URL.Query(), s.cfg.VerifyToken)
	if !ok {
		http.Error(w, "verification failed", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, challenge)
}

// webhook verifies the signature on the raw body, stores every message and status
// (deduplicated by id) and only then answers 200.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.latency.Observe(time.Since(start).Seconds()) }()
	if r.ContentLength > s.cfg.MaxBody {
		s.m.webhooks.WithLabelValues("too_large").Inc()
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	// The body is read before its signature can be checked: bound how many
	// are held at once, and answer the excess at once (Meta retries a 503).
	held := false
	release := func() {
		if held {
			held = false
			<-s.bodies
		}
	}
	select {
	case s.bodies <- struct{}{}:
		held = true
		defer release()
	default:
		s.m.webhooks.WithLabelValues("busy").Inc()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
		http.Error(w, "busy, try again", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.m.webhooks.WithLabelValues("too_large").Inc()
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		s.m.webhooks.WithLabelValues("bad_request").Inc()
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if s.cfg.AppSecret == "" || !whatsapp.VerifySignature(s.cfg.AppSecret, body, r.Header.Get(whatsapp.SignatureHeader)) {
		s.m.webhooks.WithLabelValues("bad_signature").Inc()
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	env, err := whatsapp.ParseWebhook(body)
	if err != nil {
		if errors.Is(err, whatsapp.ErrWrongObject) {
			// Another product's webhook on the same app: nothing for us, and
			// refusing it would only make Meta retry.
			s.m.webhooks.WithLabelValues("ignored").Inc()
			w.WriteHeader(http.StatusOK)
			return
		}
		s.m.webhooks.WithLabelValues("bad_request").Inc()
		http.Error(w, "invalid webhook: "+err.Error(), http.StatusBadRequest)
		return
	}
	if n, ids := s.dropOtherNumbers(env); n > 0 {
		s.m.dropped.WithLabelValues("other_phone_number").Add(float64(n))
		s.log.Warn("webhook items for a phone number id this daemon does not serve: acknowledged and dropped (phone_number_ids)",
			"items", n, "phone_number_ids", ids)
	}
	items, perr := engine.FromWebhook(env, s.eng.Now())
	if perr != nil {
		// Good items are stored; the bad ones are logged with why.
		s.m.dropped.WithLabelValues("invalid").Add(float64(countErrors(perr)))
		s.log.Warn("webhook items skipped", "err", perr)
	}
	// The body is done with (only the items wait for the store): its slot
	// goes to the next body, so requests waiting for a slow commit do not turn
	// new webhooks away.
	release()
	if len(items) > 0 {
		// Meta wants a fast answer: if storage cannot take the events within the
		// deadline (a locked or failing disk), answer 503 and let Meta retry;
		// should the commit land after all, the retry is deduplicated.
		ctx, cancel := context.WithTimeout(r.Context(), StoreDeadline)
		err := s.in.Store(ctx, items)
		cancel()
		if err != nil {
			s.m.webhooks.WithLabelValues("store_error").Inc()
			s.log.Error("webhook not stored; answering 503 so Meta retries", "err", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	s.m.webhooks.WithLabelValues("stored").Inc()
	w.WriteHeader(http.StatusOK)
}

// dropOtherNumbers removes from env the changes addressed to a business phone
// number this daemon does not serve, and returns how many messages, statuses
// and identity updates they held and the ids (at most 5, cut short).
func (s *Server) dropOtherNumbers(env *whatsapp.Envelope) (int, []string) {
	if s.numbers == nil {
		return 0, nil
	}
	n := 0
	var ids []string
	for i := range env.Entry {
		changes := env.Entry[i].Changes[:0]
		for _, ch := range env.Entry[i].Changes {
			v := ch.Value
			if id := v.Metadata.PhoneNumberID; !s.numbers[id] {
				if k := len(v.Messages) + len(v.Statuses) + len(v.UserIDUpdates); k > 0 {
					n += k
					if len(ids) < 5 {
						ids = append(ids, fmt.Sprintf("%.40q", id))
					}
					continue
				}
			}
			changes = append(changes, ch)
		}
		env.Entry[i].Changes = changes
	}
	return n, ids
}

// countErrors counts the items an errors.Join of EventErrors reports.
func countErrors(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}
