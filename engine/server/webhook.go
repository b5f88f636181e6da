package server

import (
	"context"
	"errors"
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
	items, perr := engine.FromWebhook(env, s.eng.Now())
	if perr != nil {
		// Good items are stored; the bad ones are logged with why.
		s.log.Warn("webhook items skipped", "err", perr)
	}
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
