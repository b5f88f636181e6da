package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
	"github.com/funnel-dev/funnel/store"
)

// 131049 is final by default: the message fails, is never retried, and is
// counted by flow (metric) and by contact and flow (the store's report query).
func Test131049IsFinalAndCounted(t *testing.T) {
	r := newRig(t)
	r.fake.InjectNext(whatsapptest.ErrorFault(131049))
	r.event("order_shipped", "16505558001", "A-1")
	r.advance(48 * time.Hour)
	it := r.outbox("16505558001")[0]
	if it.Status != store.OutFailed || it.ErrorCode != 131049 || it.LimitRetries != 0 {
		t.Fatalf("%+v", it)
	}
	if n := len(r.fake.Attempts()); n != 1 {
		t.Fatalf("%d attempts, want 1 (never retried blindly)", n)
	}
	if n := testutil.ToFloat64(r.m.MarketingLimited.WithLabelValues("order-shipped")); n != 1 {
		t.Errorf("funnel_marketing_limited_total = %v", n)
	}
	got, err := r.st.MarketingLimited(context.Background(), time.Time{}, 100)
	if err != nil || len(got) != 1 || got[0] != (store.MarketingLimited{FlowID: "order-shipped", Contact: "16505558001", Refused: 1}) {
		t.Fatalf("report rows %+v %v", got, err)
	}
	if fc := flowCounts(t, r, "order-shipped"); fc.MarketingLimited != 1 || fc.MarketingLimitedContacts != 1 || fc.WaitingAllowance != 0 {
		t.Fatalf("funnel report: %+v", fc)
	}
}

// flowCounts is one flow's line of the funnel report.
func flowCounts(t *testing.T, r *rig, flow string) *store.FlowCounts {
	t.Helper()
	fcs, err := r.st.Report(context.Background(), store.ReportFilter{FlowID: flow})
	if err != nil || len(fcs) != 1 {
		t.Fatalf("report: %v %v", fcs, err)
	}
	return fcs[0]
}

// With marketing_retry_after, a 131049 (here as a failed status webhook, the
// way Meta most often reports it) is sent once more after the delay, as a new
// message; a second 131049 is final.
func Test131049RetriedOnceAfterTheDelay(t *testing.T) {
	r := newRigWith(t, func(o *engine.Options) { o.MarketingRetryAfter = 24 * time.Hour })
	const c = "16505558002"
	r.event("order_shipped", c, "A-1")
	first := r.fake.SentTo(c)
	if len(first) != 1 {
		t.Fatalf("sent %d", len(first))
	}
	r.webhook(r.fake.StatusWebhook(first[0].ID, "failed", 131049))
	it := r.outbox(c)[0]
	if it.Status != store.OutPending || it.LimitRetries != 1 || it.ProviderID != "" || !strings.Contains(it.LastError, "sent once more at") {
		t.Fatalf("after the refusal: %+v", it)
	}
	r.advance(23 * time.Hour)
	if n := len(r.fake.SentTo(c)); n != 1 {
		t.Fatalf("retried before the delay: %d sends", n)
	}
	r.advance(2 * time.Hour)
	sent := r.fake.SentTo(c)
	if len(sent) != 2 || sent[1].ID == first[0].ID {
		t.Fatalf("after the delay: %+v", sent)
	}
	if it := r.outbox(c)[0]; it.Status != store.OutSent || it.ProviderID != sent[1].ID {
		t.Fatalf("the retry: %+v", it)
	}
	r.webhook(r.fake.StatusWebhook(sent[1].ID, "failed", 131049))
	r.advance(48 * time.Hour)
	if it := r.outbox(c)[0]; it.Status != store.OutFailed || it.ErrorCode != 131049 || len(r.fake.SentTo(c)) != 2 {
		t.Fatalf("a second 131049 must be final: %+v, %d sends", it, len(r.fake.SentTo(c)))
	}
	got, _ := r.st.MarketingLimited(context.Background(), time.Time{}, 100)
	if len(got) != 1 || got[0].Refused != 1 || got[0].Retried != 1 || got[0].Sent != 0 {
		t.Fatalf("report rows %+v", got)
	}
	if n := testutil.ToFloat64(r.m.MarketingLimited.WithLabelValues("order-shipped")); n != 2 {
		t.Errorf("funnel_marketing_limited_total = %v, want 2", n)
	}
}

// Past the messaging limit, business-initiated messages wait for the
// allowance (visible in /v1/status and the metrics) and go out as it frees,
// 24h after the first reaches; a contact already reached does not count
// twice, and a contact in its window is not business-initiated.
func TestMessagingLimitSpreadsOverDays(t *testing.T) {
	r := newRigWith(t, func(o *engine.Options) { o.MessagingLimit = 2 })
	contacts := []string{"16505558101", "16505558102", "16505558103", "16505558104"}
	for _, c := range contacts {
		r.event("order_shipped", c, "A-"+c)
	}
	if n := len(r.fake.Sent()); n != 2 {
		t.Fatalf("%d sent, want the limit (2)", n)
	}
	st := r.status()
	if st.Queues.OutboxWaiting != 2 || st.MessagingLimit != 2 || !hasAlert(st.Alerts, "2 messages wait for the allowance") {
		t.Fatalf("status: %+v %v", st.Queues, st.Alerts)
	}
	if it := r.outbox(contacts[2])[0]; it.Status != store.OutPending || !strings.Contains(it.LastError, "messaging limit reached (2 unique users per 24h)") {
		t.Fatalf("waiting: %+v", it)
	}
	if fc := flowCounts(t, r, "order-shipped"); fc.WaitingAllowance != 2 {
		t.Fatalf("funnel report: %d waiting for the allowance, want 2", fc.WaitingAllowance)
	}
	// A second message to a contact already reached today goes out.
	r.event("parcel_update", contacts[0], "B-1")
	if n := len(r.fake.SentTo(contacts[0])); n != 2 {
		t.Fatalf("an already reached contact: %d sent", n)
	}
	// A contact who writes is inside the window: the reply is not counted.
	r.deliver(r.message("16505558199", "menu", 0))
	r.settle()
	if n := len(r.fake.SentTo("16505558199")); n != 1 {
		t.Fatalf("a reply inside the window waited: %d sent", n)
	}
	r.advance(23 * time.Hour)
	if n := len(r.fake.Sent()); n != 4 {
		t.Fatalf("before the allowance frees: %d sent, want 4", n)
	}
	r.advance(2 * time.Hour)
	for _, c := range contacts {
		if it := r.outbox(c); it[len(it)-1].Status != store.OutSent {
			t.Fatalf("%s after a day: %+v", c, it[len(it)-1])
		}
	}
	if st := r.status(); st.Queues.OutboxWaiting != 0 || hasAlert(st.Alerts, "allowance") {
		t.Fatalf("status after a day: %+v %v", st.Queues, st.Alerts)
	}
	if n := testutil.ToFloat64(r.m.AllowanceDeferred); n < 2 {
		t.Errorf("funnel_allowance_deferred_total = %v", n)
	}
}
