package engine

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's Prometheus collectors. Register them on the daemon's
// registry with NewMetrics(reg); a nil registry gives working, unregistered ones.
type Metrics struct {
	Inbox        *prometheus.CounterVec // events processed, by kind and result
	RunsStarted  *prometheus.CounterVec // by flow
	RunsEnded    *prometheus.CounterVec // by flow and status
	Sends        *prometheus.CounterVec // by message type and outcome
	Refusals     *prometheus.CounterVec // refused before the API, by reason
	Seen131047   prometheus.Counter     // 131047 from Meta (sync or by status): must stay 0
	TimersFired  prometheus.Counter     // timers that advanced a run
	TimerLag     prometheus.Histogram   // how late timers fire
	SenderPaused *prometheus.GaugeVec   // 1 while the sender is stopped, by reason
	StatusesIn   *prometheus.CounterVec // delivery statuses, by status
	StepErrors   *prometheus.CounterVec // expression errors at run time, by flow
	// RetentionDeleted counts rows deleted past their retention, by table.
	RetentionDeleted *prometheus.CounterVec
	// TemplateBlocked is 1 while a template ("name:language") cannot be sent
	// (paused, disabled, …): its messages are held.
	TemplateBlocked *prometheus.GaugeVec
	// TemplateHeld counts messages held because their template could not be
	// sent (they are released when it is approved again).
	TemplateHeld prometheus.Counter
	// PhoneQuality counts phone_number_quality_update webhooks, by event.
	PhoneQuality *prometheus.CounterVec
	// MarketingLimited counts 131049 refusals (Meta's per-user marketing
	// limit), by flow; per contact: Store.MarketingLimited.
	MarketingLimited *prometheus.CounterVec
	// AllowanceDeferred counts messages put off for the messaging limit.
	AllowanceDeferred prometheus.Counter
	// StepsReached counts steps executed, by flow and step.
	StepsReached *prometheus.CounterVec
	// Conversions counts conversions recorded (once per run and step), by flow
	// and event.
	Conversions *prometheus.CounterVec
	// SplitAssigned counts the variants splits assigned, by flow, step and variant.
	SplitAssigned *prometheus.CounterVec
	// CAPIEvents counts Conversions API outcomes (sent, retry, failed, expired, paused).
	CAPIEvents *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Inbox: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_inbox_processed_total",
			Help: "Inbound events processed, by kind (message, status, event) and result."}, []string{"kind", "result"}),
		RunsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_runs_started_total",
			Help: "Runs started, by flow."}, []string{"flow"}),
		RunsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_runs_ended_total",
			Help: "Runs ended, by flow and final status."}, []string{"flow", "status"}),
		Sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_sends_total",
			Help: "Send attempts, by message type and outcome (sent, retry, failed, unknown)."}, []string{"type", "outcome"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_send_refusals_total",
			Help: "Messages refused before reaching the API, by reason (window_closed, opted_out, no_consent, invalid, queue_full)."}, []string{"reason"}),
		Seen131047: prometheus.NewCounter(prometheus.CounterOpts{Name: "funnel_whatsapp_131047_total",
			Help: "Re-engagement errors (131047) returned by Meta. The runtime policy exists to keep this at 0."}),
		TimersFired: prometheus.NewCounter(prometheus.CounterOpts{Name: "funnel_timers_fired_total",
			Help: "Timers (waits, reply timeouts) that advanced a run."}),
		TimerLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "funnel_timer_lag_seconds",
			Help: "How long after its due time a timer fired.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		SenderPaused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "funnel_sender_paused",
			Help: "1 while the sender is stopped (token expired, policy block, spam limit), by reason."}, []string{"reason"}),
		StatusesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_statuses_total",
			Help: "Delivery statuses received, by status (sent, delivered, read, failed, deleted, played; other for anything else)."}, []string{"status"}),
		StepErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_step_errors_total",
			Help: "Expressions that failed at run time (rendered empty or counted false), by flow."}, []string{"flow"}),
		RetentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_retention_deleted_total",
			Help: "Rows deleted once past their retention, by table (inbox, runs, outbox, message_statuses)."}, []string{"table"}),
		TemplateBlocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "funnel_template_blocked",
			Help: "1 while Meta refuses a template (paused, disabled, …) and its messages are held, by template (name:language)."}, []string{"template"}),
		TemplateHeld: prometheus.NewCounter(prometheus.CounterOpts{Name: "funnel_template_held_total",
			Help: "Messages held because their template was paused or disabled (released when it is approved again)."}),
		PhoneQuality: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_phone_quality_updates_total",
			Help: "phone_number_quality_update webhooks, by event (FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, …)."}, []string{"event"}),
		MarketingLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_marketing_limited_total",
			Help: "Messages Meta refused with 131049 (its per-user marketing limit), by flow."}, []string{"flow"}),
		AllowanceDeferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "funnel_allowance_deferred_total",
			Help: "Times a business-initiated message was put off because the messaging limit was reached."}),
		StepsReached: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_steps_reached_total",
			Help: "Steps executed, by flow and step (a step a loop re-enters counts each time)."}, []string{"flow", "step"}),
		Conversions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_conversions_total",
			Help: "Conversions recorded (once per run and convert step), by flow and event."}, []string{"flow", "event"}),
		SplitAssigned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_split_assigned_total",
			Help: "Variants assigned by split steps, by flow, step and variant."}, []string{"flow", "step", "variant"}),
		CAPIEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "funnel_capi_events_total",
			Help: "Conversions API events by outcome: sent, retry, failed, expired (past the 7-day attribution window), paused (token or permission error)."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.Inbox, m.RunsStarted, m.RunsEnded, m.Sends, m.Refusals, m.Seen131047,
			m.TimersFired, m.TimerLag, m.SenderPaused, m.StatusesIn, m.StepErrors, m.RetentionDeleted,
			m.TemplateBlocked, m.TemplateHeld, m.PhoneQuality, m.MarketingLimited, m.AllowanceDeferred,
			m.StepsReached, m.Conversions, m.SplitAssigned, m.CAPIEvents)
	}
	return m
}

// statusLabels are the delivery statuses Meta documents; anything else a
// webhook says is counted as "other", so a sender cannot grow the number of
// series without bound.
var statusLabels = map[string]bool{"sent": true, "delivered": true, "read": true, "failed": true, "deleted": true, "played": true}

func statusLabel(s string) string {
	if statusLabels[s] {
		return s
	}
	return "other"
}
