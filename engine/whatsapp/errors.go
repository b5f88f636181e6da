package whatsapp

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Class is what the sender should do after a failed send.
type Class int

const (
	// OK: no error.
	OK Class = iota
	// Retryable: transient (throughput, pair rate, outage, request never
	// sent). Retry after Backoff.
	Retryable
	// Permanent: this message will not go through as is (window closed,
	// user unreachable or opted out, template problem, invalid message).
	Permanent
	// Pause: the number is being throttled for spam (131048). Stop sending
	// from it for a while and alert a human; do not hammer.
	Pause
	// Fatal: nothing will go through until a human fixes it (token expired,
	// policy block, missing permission). Stop the sender and alert.
	Fatal
	// Unknown: the request may or may not have produced a message. Do not
	// resend blindly (at-most-once); reconcile from status webhooks.
	Unknown
	// Held: the template is paused (132015) or disabled (132016). The message
	// is not lost and not worth retrying now: it waits until the template is
	// APPROVED again (a message_template_status_update webhook), or goes out
	// as its fallback. Other messages are not affected.
	Held
)

func (c Class) String() string {
	switch c {
	case OK:
		return "ok"
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	case Pause:
		return "pause"
	case Fatal:
		return "fatal"
	case Unknown:
		return "unknown"
	case Held:
		return "held"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Graph API error codes funnel acts on (docs/WHATSAPP.md, "Error classes").
const (
	CodeUnknownAPI         = 1
	CodeServiceUnavailable = 2
	CodeCapability         = 3
	CodeAppRateLimit       = 4
	CodePermissionDenied   = 10
	CodeTokenExpired       = 190
	CodePolicyBlocked      = 368
	CodeWABARateLimit      = 80007
	CodeThroughput         = 130429
	CodeExperiment         = 130472
	CodeUndeliverable      = 131026
	CodeAccountLocked      = 131031
	CodeReEngagement       = 131047
	CodeSpamRateLimit      = 131048
	CodeEcosystemHealth    = 131049
	CodeMarketingOptOut    = 131050
	CodeUnsupportedType    = 131051
	CodeMediaUpload        = 131053
	CodePairRateLimit      = 131056
	CodeMaintenance        = 131057
	// CodeBSUIDUnsupported: this message cannot go to a business-scoped user
	// ID (one-tap, zero-tap and copy-code authentication templates need the
	// phone number).
	CodeBSUIDUnsupported   = 131062
	CodeTemplateParamCount = 132000
	// CodeTemplateMissing: the template does not exist in that language (or
	// exists but is not approved in it). Permanent: the message fails with
	// the reason; sending the same again cannot work.
	CodeTemplateMissing     = 132001
	CodeTemplateTextTooLong = 132005
	CodeTemplateFormat      = 132007
	CodeTemplateParamFormat = 132012
	CodeTemplatePaused      = 132015
	CodeTemplateDisabled    = 132016
)

// codeClass maps the codes docs/WHATSAPP.md lists, plus the permission and
// account-lock codes (3, 10, 200–299, 131031) which, like 190, fail every send
// until a human acts: classing them Permanent would burn the whole outbox.
var codeClass = map[int]Class{
	CodeUnknownAPI:         Retryable,
	CodeServiceUnavailable: Retryable,
	CodeAppRateLimit:       Retryable,
	CodeWABARateLimit:      Retryable,
	CodeThroughput:         Retryable,
	CodePairRateLimit:      Retryable,
	CodeMaintenance:        Retryable,

	CodeReEngagement:        Permanent,
	CodeUndeliverable:       Permanent,
	CodeEcosystemHealth:     Permanent,
	CodeMarketingOptOut:     Permanent,
	CodeUnsupportedType:     Permanent,
	CodeMediaUpload:         Permanent,
	CodeTemplateParamCount:  Permanent,
	CodeTemplateMissing:     Permanent,
	CodeTemplateTextTooLong: Permanent,
	CodeTemplateFormat:      Permanent,
	CodeTemplateParamFormat: Permanent,
	CodeTemplatePaused:      Held,
	CodeTemplateDisabled:    Held,
	CodeExperiment:          Permanent,
	CodeBSUIDUnsupported:    Permanent,

	CodeSpamRateLimit: Pause,

	CodeTokenExpired:     Fatal,
	CodePolicyBlocked:    Fatal,
	CodeCapability:       Fatal,
	CodePermissionDenied: Fatal,
	CodeAccountLocked:    Fatal,
}

// ClassifyCode classifies a Graph API error code with the HTTP status it came
// with; the code wins, the status decides for codes funnel does not know.
// Also used for the errors[] of failed status webhooks (pass status 0).
func ClassifyCode(code, httpStatus int) Class {
	if c, ok := codeClass[code]; ok {
		return c
	}
	if code >= 200 && code <= 299 { // Graph API permission errors
		return Fatal
	}
	switch {
	case httpStatus >= 500, httpStatus == 429:
		return Retryable
	case httpStatus == 401:
		return Fatal
	}
	return Permanent
}

// Classify says what to do after err from Client.Send.
func Classify(err error) Class {
	if err == nil {
		return OK
	}
	var api *APIError
	var notSent *NotSentError
	var unknown *UnknownOutcomeError
	switch {
	case errors.As(err, &unknown):
		return Unknown
	case errors.As(err, &api):
		return ClassifyCode(api.Code, api.HTTPStatus)
	case errors.As(err, &notSent):
		return Retryable
	case errors.Is(err, ErrInvalidMessage):
		return Permanent
	case errors.Is(err, ErrConfig):
		return Fatal
	}
	// Anything else (a custom transport's error, …) may have left: the safe
	// answer for marketing is not to resend.
	return Unknown
}

// ErrorCode is the Graph API code of err, 0 when it is not an API error.
func ErrorCode(err error) int {
	var api *APIError
	if errors.As(err, &api) {
		return api.Code
	}
	return 0
}

// Backoff bounds.
const (
	BackoffBase = time.Second
	BackoffCap  = 15 * time.Minute
	// PauseFor is how long a number stays silent after a Pause answer (131048)
	// before it probes again: the sender's pause and Backoff's answer for Pause.
	PauseFor = 10 * time.Minute
)

// Backoff is how long to wait before retry number attempt (0 for the first
// retry, as Meta counts). Retryable errors get exponential backoff with full
// jitter, rnd()·min(15m, 1s·2^attempt), so synchronized senders spread out.
// A pair-rate error (code 131056) waits Meta's 4^attempt seconds plus up to
// as much again of jitter (never less than Meta asks), capped at 15m. Pause
// returns PauseFor, the time before probing again. Other classes are not retried
// and return 0. rnd returns a float in [0,1); nil uses math/rand/v2.
func Backoff(class Class, attempt int, code int, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	if attempt < 0 {
		attempt = 0
	}
	switch class {
	case Retryable:
		if code == CodePairRateLimit {
			d := capped(math.Pow(4, float64(attempt)) * float64(time.Second))
			return capped(float64(d) * (1 + clamp01(rnd())))
		}
		return time.Duration(clamp01(rnd()) * float64(capped(math.Pow(2, float64(attempt))*float64(BackoffBase))))
	case Pause:
		return PauseFor
	}
	return 0
}

func capped(f float64) time.Duration {
	if f >= float64(BackoffCap) || math.IsNaN(f) || math.IsInf(f, 0) {
		return BackoffCap
	}
	return time.Duration(f)
}

func clamp01(f float64) float64 {
	if f < 0 || math.IsNaN(f) {
		return 0
	}
	if f > 1 {
		return 1
	}
	return f
}
