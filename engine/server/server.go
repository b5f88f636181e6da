package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/store"
)

// Config holds the server's secrets and limits. Secrets come from the
// environment only (cmd/funnel reads them); an empty AppSecret refuses every
// webhook POST, an empty APIToken disables the events and contacts API.
type Config struct {
	AppSecret   string
	VerifyToken string
	APIToken    string
	// MaxBody bounds a webhook or API request body (default 1 MiB): larger gets 413.
	MaxBody int64
	// MaxConcurrentBodies bounds the webhook bodies read at once (default
	// 64). Bodies are read before their signature can be checked, so anyone
	// can make the server hold them: past the bound a webhook is answered 503
	// at once (Meta delivers it again) instead of taking memory.
	MaxConcurrentBodies int
	// PhoneNumberIDs are the business phone numbers this daemon serves.
	// Messages and statuses addressed to another number (same app, other
	// WABA, or forged) are acknowledged, logged and dropped. Empty: all.
	PhoneNumberIDs []string
	// SeparateMetrics leaves GET /metrics off Handler: the daemon serves
	// MetricsHandler on a listener of its own (metrics_listen), so the
	// public listener does not show queue depths and error counts.
	SeparateMetrics bool
}

// Server is the HTTP surface over an engine.
type Server struct {
	cfg Config
	eng *engine.Engine
	st  store.Store
	log *slog.Logger
	reg *prometheus.Registry
	in  *ingester
	mux *http.ServeMux
	m   metrics

	apiDigest [32]byte      // SHA-256 of cfg.APIToken
	bodies    chan struct{} // one token per webhook body being read
	numbers   map[string]bool

	// devGuard, set by the sandbox (--dev), replaces the API token on the
	// dashboard with the sandbox's guard.
	devGuard func(http.HandlerFunc) http.HandlerFunc
}

type metrics struct {
	webhooks   *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	latency    prometheus.Histogram
	apiEvents  *prometheus.CounterVec
	ingestRows prometheus.Counter
}

// New builds a server. reg receives the server's, the engine's and the Go
// runtime's collectors (pass the registry the engine's Metrics were made with).
func New(cfg Config, eng *engine.Engine, reg *prometheus.Registry, log *slog.Logger) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxConcurrentBodies <= 0 {
		cfg.MaxConcurrentBodies = 64
	}
	s := &Server{cfg: cfg, eng: eng, st: eng.Store(), log: log, reg: reg, mux: http.NewServeMux(), apiDigest: tokenDigest(cfg.APIToken),
		bodies: make(chan struct{}, cfg.MaxConcurrentBodies)}
	if len(cfg.PhoneNumberIDs) > 0 {
		s.numbers = map[string]bool{}
		for _, id := range cfg.PhoneNumberIDs {
			s.numbers[id] = true
		}
	}
	s.m = metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_webhooks_total",
			Help: "Webhook POSTs, by result (stored, ignored, busy, bad_signature, too_large, bad_request, store_error)."}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_webhook_items_dropped_total",
			Help: "Messages and statuses of signed webhooks acknowledged but not stored, by reason (other_phone_number, invalid)."}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "funnel_webhook_seconds",
			Help:    "Time to acknowledge a webhook POST, durable store included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		apiEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_api_events_total",
			Help: "Events API calls, by result."}, []string{"result"}),
		ingestRows: prometheus.NewCounter(prometheus.CounterOpts{Name: "funnel_inbox_stored_total",
			Help: "Inbound events newly stored (duplicates excluded)."}),
	}
	reg.MustRegister(s.m.webhooks, s.m.dropped, s.m.latency, s.m.apiEvents, s.m.ingestRows,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newQueueCollector(s.st, eng))
	s.in = newIngester(func(ctx context.Context, items []store.InboxItem) (int, error) {
		n, err := eng.Enqueue(ctx, items)
		s.m.ingestRows.Add(float64(n))
		return n, err
	}, 2000)
	s.mux.HandleFunc("GET /webhook", s.verify)
	s.mux.HandleFunc("POST /webhook", s.webhook)
	s.mux.HandleFunc("POST /v1/events", s.auth(s.postEvent))
	s.mux.HandleFunc("GET /v1/contacts/{id}", s.auth(s.getContact))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /v1/status", s.auth(s.status))
	s.mux.HandleFunc("GET /v1/report", s.auth(s.getReport))
	s.mountDashboard()
	if !cfg.SeparateMetrics {
		s.mux.Handle("GET /metrics", s.metricsHandler())
	}
	return s
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// MetricsHandler serves GET /metrics alone, for a listener of its own.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	return mux
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux lets the daemon mount more routes (the sandbox).
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Close stops the ingester after in-flight requests have committed.
func (s *Server) Close() { s.in.Close() }

// HTTPServer wraps the handler with timeouts that keep slow or stuck clients from
// holding connections: slowloris headers, slow bodies, idle keep-alives.
func HTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// queueCollector reports queue depths at scrape time, each counted up to
// DepthLimit through an index (a scrape costs the same whatever the tables hold).
type queueCollector struct {
	st  store.Store
	eng *engine.Engine
	d   map[string]*prometheus.Desc
}

func newQueueCollector(st store.Store, eng *engine.Engine) *queueCollector {
	desc := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	const upTo = " Counted up to 10000."
	return &queueCollector{st: st, eng: eng, d: map[string]*prometheus.Desc{
		"inbox":   desc("funnel_inbox_pending", "Inbound events stored but not processed yet."+upTo),
		"outbox":  desc("funnel_outbox_pending", "Messages waiting to be sent."+upTo),
		"sending": desc("funnel_outbox_sending", "Messages claimed or being sent now."+upTo),
		"held":    desc("funnel_outbox_held", "Messages held because their template is paused or disabled."+upTo),
		"waiting": desc("funnel_outbox_waiting_allowance", "Messages waiting for the messaging limit's allowance (unique users per 24h)."+upTo),
		"timers":  desc("funnel_timers_pending", "Timers (waits, reply timeouts) not fired yet."+upTo),
		"due":     desc("funnel_timers_due", "Timers due and not fired yet."+upTo),
		"lag":     desc("funnel_timer_overdue_seconds", "How far past due the oldest pending timer is (0 when none is due)."),
		"runs":    desc("funnel_runs_live", "Runs not ended."+upTo),
	}}
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range q.d {
		ch <- d
	}
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := q.eng.Now()
	d, err := q.st.Depths(ctx, now, DepthLimit)
	if err != nil {
		return
	}
	g := func(k string, v int64) {
		ch <- prometheus.MustNewConstMetric(q.d[k], prometheus.GaugeValue, float64(v))
	}
	g("inbox", d.InboxPending)
	g("outbox", d.OutboxPending)
	g("sending", d.OutboxSending)
	g("held", d.OutboxHeld)
	g("waiting", d.OutboxWaiting)
	g("timers", d.Timers)
	g("due", d.TimersDue)
	g("runs", d.LiveRuns)
	lag := 0.0
	if !d.OldestTimerDue.IsZero() {
		lag = max(0, now.Sub(d.OldestTimerDue).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(q.d["lag"], prometheus.GaugeValue, lag)
}
