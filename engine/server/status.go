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
	// Alerts are the conditions that need a human, in words; empty when none.
	Alerts []string `json:"alerts"`
}

// SenderStatus says whether messages go out.
type SenderStatus struct {
	State  string `json:"state"`            // sending or stopped
	Reason string `json:"reason,omitempty"` // why it stopped
}

// QueueStatus are the queue depths, each counted up to Limit.
type QueueStatus struct {
	Limit          int64      `json:"limit"`
	InboxPending   int64      `json:"inbox_pending"`
	OutboxPending  int64      `json:"outbox_pending"`
	OutboxSending  int64      `json:"outbox_sending"`
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
	st := Status{Ready: true, Sender: SenderStatus{State: "sending"}, Alerts: []string{}}
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
		OutboxSending: d.OutboxSending, Timers: d.Timers, TimersDue: d.TimersDue, LiveRuns: d.LiveRuns}
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
	return st
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	writeJSON(w, http.StatusOK, s.Status(ctx))
}
