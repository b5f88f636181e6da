package server

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// DepthLimit bounds every queue count of the metrics and of /v1/status: a
// scrape reads at most that many index entries per queue, whatever the size of
// the tables. A count equal to it means "that many or more".
const DepthLimit = 10_000

// Status is what an operator needs to know and what should page someone:
// GET /v1/status, and the daemon logs its alerts when they change.
type Status struct {
	Ready  bool         `json:"ready"`
	Flows  int          `json:"flows"`
	Sender SenderStatus `json:"sender"`
	Queues QueueStatus  `json:"queues"`
	// StoreError is the last webhook commit's error, while no commit has
	// succeeded since.
	StoreError string `json:"store_error,omitempty"`
	// MessagingLimit is the configured messaging limit (unique users per
	// rolling 24h), 0 when unlimited.
	MessagingLimit int `json:"messaging_limit"`
	// Templates is what Meta last said about each template it sent a
	// lifecycle webhook (or a 132015/132016) for.
	Templates []TemplateStatus `json:"templates"`
	// PhoneNumbers is the last phone_number_quality_update of each number.
	PhoneNumbers []PhoneStatus `json:"phone_numbers"`
	// Alerts are the conditions that need a human, in words; empty when none.
	Alerts []string `json:"alerts"`
}

// TemplateStatus is one template's state as Meta's webhooks gave it.
type TemplateStatus struct {
	Template string     `json:"template"` // name:language
	Status   string     `json:"status,omitempty"`
	Since    *time.Time `json:"since,omitempty"` // when the status changed
	Event    string     `json:"event,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Category string     `json:"category,omitempty"`
	Quality  string     `json:"quality,omitempty"`
	Blocked  bool       `json:"blocked"` // its messages are held
}

// PhoneStatus is a business number's quality rating and messaging limit as
// the last phone_number_quality_update gave them.
type PhoneStatus struct {
	DisplayPhoneNumber  string    `json:"display_phone_number"`
	Event               string    `json:"event"`
	CurrentLimit        string    `json:"current_limit,omitempty"`
	OldLimit            string    `json:"old_limit,omitempty"`
	MaxDailyPerBusiness string    `json:"max_daily_per_business,omitempty"`
	At                  time.Time `json:"at"`
}

// SenderStatus says whether messages go out.
type SenderStatus struct {
	State  string `json:"state"`            // sending or stopped
	Reason string `json:"reason,omitempty"` // why it stopped
}

// QueueStatus are the queue depths, each counted up to Limit.
type QueueStatus struct {
	Limit         int64 `json:"limit"`
	InboxPending  int64 `json:"inbox_pending"`
	OutboxPending int64 `json:"outbox_pending"`
	OutboxSending int64 `json:"outbox_sending"`
	OutboxHeld    int64 `json:"outbox_held"`
	// OutboxWaiting are messages waiting for the messaging limit's allowance.
	OutboxWaiting  int64      `json:"outbox_waiting_allowance"`
	Timers         int64      `json:"timers"`
	TimersDue      int64      `json:"timers_due"`
	LiveRuns       int64      `json:"live_runs"`
	OldestTimerDue *time.Time `json:"oldest_timer_due,omitempty"`
	TimerOverdue   float64    `json:"timer_overdue_seconds"`
}

// Alert thresholds: an inbox that does not drain, or timers that fire late.
const (
	backlogAlert = DepthLimit
	overdueAlert = time.Minute
)

// Status reads the daemon's state (bounded reads only).
func (s *Server) Status(ctx context.Context) Status {
	st := Status{Ready: true, Sender: SenderStatus{State: "sending"}, Alerts: []string{},
		Templates: []TemplateStatus{}, PhoneNumbers: []PhoneStatus{}}
	if p := s.eng.Flows(); p != nil {
		st.Flows = len(p.Flows)
	} else {
		st.Ready = false
		st.Alerts = append(st.Alerts, "no flows loaded")
	}
	if reason := s.eng.Paused(); reason != "" {
		st.Sender = SenderStatus{State: "stopped", Reason: reason}
		st.Alerts = append(st.Alerts, "sender stopped: "+reason)
	}
	if at, err := s.in.failing(); err != nil {
		st.StoreError = err.Error()
		st.Alerts = append(st.Alerts, fmt.Sprintf("webhooks not stored: %v (since %s)", err, at.UTC().Format(time.RFC3339)))
	}
	now := s.eng.Now()
	d, err := s.st.Depths(ctx, now, DepthLimit)
	if err != nil {
		st.Ready = false
		st.Alerts = append(st.Alerts, "store unreadable: "+err.Error())
		return st
	}
	st.Queues = QueueStatus{Limit: d.Limit, InboxPending: d.InboxPending, OutboxPending: d.OutboxPending,
		OutboxSending: d.OutboxSending, OutboxHeld: d.OutboxHeld, OutboxWaiting: d.OutboxWaiting, Timers: d.Timers, TimersDue: d.TimersDue, LiveRuns: d.LiveRuns}
	if !d.OldestTimerDue.IsZero() {
		t := d.OldestTimerDue.UTC()
		st.Queues.OldestTimerDue = &t
		st.Queues.TimerOverdue = max(0, now.Sub(t).Seconds())
	}
	if d.InboxPending >= backlogAlert {
		st.Alerts = append(st.Alerts, fmt.Sprintf("inbox backlog: %d or more events not processed", d.InboxPending))
	}
	if over := time.Duration(st.Queues.TimerOverdue * float64(time.Second)); over > overdueAlert {
		st.Alerts = append(st.Alerts, fmt.Sprintf("timers late: the oldest is %s overdue", over.Round(time.Second)))
	}
	st.MessagingLimit = s.eng.MessagingLimit()
	if d.OutboxWaiting > 0 {
		st.Alerts = append(st.Alerts, fmt.Sprintf("messaging limit reached: %d messages wait for the allowance (messaging_limit %d unique users per 24h)",
			d.OutboxWaiting, st.MessagingLimit))
	}
	s.accountStatus(ctx, &st)
	return st
}

// accountStatus adds the templates' and phone numbers' states, and alerts for
// a template Meta refuses (its messages are held), a template rated RED, and
// a number flagged or moved down a messaging-limit tier.
func (s *Server) accountStatus(ctx context.Context, st *Status) {
	ts, err := s.st.TemplateStates(ctx)
	if err != nil {
		st.Alerts = append(st.Alerts, "template states unreadable: "+err.Error())
	}
	for _, t := range ts {
		ts := TemplateStatus{Template: t.Key(), Status: t.Status, Event: t.Event, Reason: t.Reason, Category: t.Category,
			Quality: t.Quality, Blocked: t.Blocked()}
		if !t.StatusAt.IsZero() {
			at := t.StatusAt.UTC()
			ts.Since = &at
		}
		st.Templates = append(st.Templates, ts)
		since := ""
		if ts.Since != nil {
			since = " since " + ts.Since.Format(time.RFC3339)
		}
		switch {
		case ts.Blocked:
			st.Alerts = append(st.Alerts, fmt.Sprintf("template %s is %s%s: its messages are held until Meta approves it again (%d held in all)",
				ts.Template, ts.Status, since, st.Queues.OutboxHeld))
		case t.Event == "FLAGGED":
			st.Alerts = append(st.Alerts, fmt.Sprintf("template %s was flagged by Meta%s: it will be disabled unless its quality improves", ts.Template, since))
		case t.Quality == "RED":
			st.Alerts = append(st.Alerts, fmt.Sprintf("template %s has a RED quality rating: Meta may pause it", ts.Template))
		}
	}
	ps, err := s.st.PhoneQualities(ctx)
	if err != nil {
		st.Alerts = append(st.Alerts, "phone number quality unreadable: "+err.Error())
	}
	for _, p := range ps {
		st.PhoneNumbers = append(st.PhoneNumbers, PhoneStatus{DisplayPhoneNumber: p.DisplayPhoneNumber, Event: p.Event,
			CurrentLimit: p.CurrentLimit, OldLimit: p.OldLimit, MaxDailyPerBusiness: p.MaxDaily, At: p.At.UTC()})
		switch p.Event {
		case "FLAGGED":
			st.Alerts = append(st.Alerts, fmt.Sprintf("phone number %s is flagged for low quality (since %s): its messaging limit may go down",
				p.DisplayPhoneNumber, p.At.UTC().Format(time.RFC3339)))
		case "DOWNGRADE":
			st.Alerts = append(st.Alerts, fmt.Sprintf("phone number %s moved down to messaging limit %s from %s (since %s)",
				p.DisplayPhoneNumber, p.CurrentLimit, p.OldLimit, p.At.UTC().Format(time.RFC3339)))
		}
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	writeJSON(w, http.StatusOK, s.Status(ctx))
}
