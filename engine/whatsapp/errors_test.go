package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Every code of docs/WHATSAPP.md's table, with the HTTP status Meta usually sends.
func TestClassifyCodes(t *testing.T) {
	tests := []struct {
		code, status int
		want         Class
	}{
		{131047, 400, Permanent},
		{131026, 400, Permanent},
		{131049, 400, Permanent},
		{131050, 400, Permanent},
		{131051, 400, Permanent},
		{131053, 400, Permanent},
		{132000, 400, Permanent},
		{132001, 404, Permanent},
		{132005, 400, Permanent},
		{132007, 400, Permanent},
		{132012, 400, Permanent},
		{132015, 400, Held},
		{132016, 400, Held},
		{130472, 400, Permanent},
		{130429, 400, Retryable},
		{130429, 429, Retryable},
		{131056, 400, Retryable},
		{131057, 400, Retryable},
		{1, 500, Retryable},
		{1, 400, Retryable},
		{2, 503, Retryable},
		{4, 400, Retryable},
		{80007, 400, Retryable},
		{131048, 400, Pause},
		{368, 400, Fatal},
		{190, 401, Fatal},
		{190, 400, Fatal},
		// Beyond the codes Meta documents: permission / lock codes stop the sender.
		{3, 400, Fatal},
		{10, 403, Fatal},
		{200, 403, Fatal},
		{299, 403, Fatal},
		{131031, 400, Fatal},
		// Unlisted codes: the HTTP status decides.
		{131000, 500, Retryable},
		{131016, 503, Retryable},
		{100, 400, Permanent},
		{131008, 400, Permanent},
		{0, 500, Retryable},
		{0, 502, Retryable},
		{0, 429, Retryable},
		{0, 404, Permanent},
		{0, 401, Fatal},
		{0, 400, Permanent},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.code, tt.status), func(t *testing.T) {
			err := fmt.Errorf("send: %w", &APIError{HTTPStatus: tt.status, Code: tt.code})
			if got := Classify(err); got != tt.want {
				t.Errorf("Classify = %v, want %v", got, tt.want)
			}
			if got := ClassifyCode(tt.code, tt.status); got != tt.want {
				t.Errorf("ClassifyCode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClassifyOther(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, OK},
		{"not sent", &NotSentError{Err: errors.New("dial")}, Retryable},
		{"unknown outcome", &UnknownOutcomeError{Err: context.DeadlineExceeded}, Unknown},
		{"wrapped unknown outcome", fmt.Errorf("x: %w", &UnknownOutcomeError{Err: errors.New("reset")}), Unknown},
		{"invalid message", fmt.Errorf("%w: x", ErrInvalidMessage), Permanent},
		{"config", fmt.Errorf("%w: x", ErrConfig), Fatal},
		{"bare context error", context.DeadlineExceeded, Unknown},
		{"anything else", errors.New("?"), Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify = %v, want %v", got, tt.want)
			}
		})
	}
	for c, s := range map[Class]string{OK: "ok", Retryable: "retryable", Permanent: "permanent", Pause: "pause", Fatal: "fatal", Unknown: "unknown", 42: "class(42)"} {
		if c.String() != s {
			t.Errorf("%d.String() = %q", int(c), c.String())
		}
	}
}

func TestBackoff(t *testing.T) {
	fixed := func(f float64) func() float64 { return func() float64 { return f } }
	tests := []struct {
		name    string
		class   Class
		attempt int
		code    int
		rnd     float64
		want    time.Duration
	}{
		{"first retry max", Retryable, 0, 130429, 0.999999999, time.Second - 1},
		{"first retry half", Retryable, 0, 130429, 0.5, 500 * time.Millisecond},
		{"third retry half", Retryable, 3, 1, 0.5, 4 * time.Second},
		{"full jitter can be 0", Retryable, 5, 0, 0, 0},
		{"capped", Retryable, 20, 0, 0.5, 450 * time.Second},
		{"huge attempt", Retryable, 1 << 30, 0, 1, 15 * time.Minute},
		{"negative attempt", Retryable, -3, 0, 0.5, 500 * time.Millisecond},
		{"pair 0", Retryable, 0, 131056, 0, time.Second},
		{"pair 1", Retryable, 1, 131056, 0, 4 * time.Second},
		{"pair 2 jitter", Retryable, 2, 131056, 0.5, 24 * time.Second},
		{"pair 3", Retryable, 3, 131056, 0, 64 * time.Second},
		{"pair capped", Retryable, 6, 131056, 0, 15 * time.Minute},
		{"pair huge", Retryable, 1000, 131056, 0.9, 15 * time.Minute},
		{"bad rnd clamped", Retryable, 0, 0, 7, time.Second},
		{"pause", Pause, 0, 131048, 0.3, PauseFor},
		{"permanent", Permanent, 2, 131047, 0.5, 0},
		{"fatal", Fatal, 0, 190, 0.5, 0},
		{"unknown", Unknown, 0, 0, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Backoff(tt.class, tt.attempt, tt.code, fixed(tt.rnd)); got != tt.want {
				t.Errorf("Backoff = %v, want %v", got, tt.want)
			}
		})
	}
	for i := 0; i < 1000; i++ {
		if d := Backoff(Retryable, 4, 0, nil); d < 0 || d >= 16*time.Second {
			t.Fatalf("nil rnd: %v", d)
		}
	}
}
