package whatsapp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
)

// DefaultBaseURL is used when Client.BaseURL is empty.
const DefaultBaseURL = "https://graph.facebook.com/v23.0"

// maxResponse bounds how much of a Graph API response is read: real ones are
// tiny, and a runaway body must not exhaust memory.
const maxResponse = 4 << 20

// ErrConfig reports a client that cannot work at all (no token, no phone
// number id): a configuration problem, not a property of one message.
var ErrConfig = errors.New("whatsapp: client misconfigured")

// Client calls the Graph API. The zero value is not usable: Token is
// required. It is safe for concurrent use.
type Client struct {
	// BaseURL includes the API version, e.g. https://graph.facebook.com/v23.0.
	BaseURL string
	// Token is the system-user access token sent as a bearer token.
	Token string
	// HTTP is the client used; nil means http.DefaultClient. Set a Timeout:
	// a send without one can hang forever.
	HTTP *http.Client
}

// SendResult is the synchronous acceptance of a message. Acceptance is not
// delivery: that arrives later as status webhooks.
type SendResult struct {
	MessageID     string // wamid…
	MessageStatus string // accepted | held_for_quality_assessment | paused
	WaID          string // the recipient's WhatsApp id as Meta normalized it (sent to a number)
	UserID        string // the recipient's BSUID (sent to a BSUID)
}

// APIError is an error response from the Graph API (or a non-2xx response
// without a readable error body, then Code is 0). Act on Code and Details.
type APIError struct {
	HTTPStatus int
	Code       int
	Subcode    int
	Type       string
	Message    string
	Details    string
	FBTraceID  string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "whatsapp: graph api: HTTP %d", e.HTTPStatus)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", code %d", e.Code)
	}
	if e.Subcode != 0 {
		fmt.Fprintf(&b, "/%d", e.Subcode)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Details != "" {
		b.WriteString(" (" + e.Details + ")")
	}
	if e.FBTraceID != "" {
		b.WriteString(" [fbtrace_id " + e.FBTraceID + "]")
	}
	return b.String()
}

// NotSentError means the request never fully left this process (DNS, dial,
// TLS, a failed write, a context done before sending): Meta cannot have acted
// on it, so retrying cannot duplicate a message.
type NotSentError struct{ Err error }

func (e *NotSentError) Error() string { return "whatsapp: request not sent: " + e.Err.Error() }
func (e *NotSentError) Unwrap() error { return e.Err }

// UnknownOutcomeError means the whole request was written but no usable
// response was read (timeout, connection reset, a 2xx with an unreadable
// body): Meta may or may not have accepted the message. There is no
// idempotency key, so resending risks a duplicate.
type UnknownOutcomeError struct{ Err error }

func (e *UnknownOutcomeError) Error() string {
	return "whatsapp: outcome unknown (request sent, no response read): " + e.Err.Error()
}
func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

func (c *Client) base() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Send posts m to {BaseURL}/{phoneNumberID}/messages. It validates m first
// (an invalid message is never sent: the error wraps ErrInvalidMessage).
// Errors are *APIError, *NotSentError, *UnknownOutcomeError or wrap
// ErrInvalidMessage / ErrConfig; Classify says what to do with each.
func (c *Client) Send(ctx context.Context, phoneNumberID string, m *Message) (SendResult, error) {
	if c.Token == "" {
		return SendResult{}, fmt.Errorf("%w: no access token", ErrConfig)
	}
	if phoneNumberID == "" {
		return SendResult{}, fmt.Errorf("%w: no phone number id", ErrConfig)
	}
	if err := CheckBaseURL(c.base()); err != nil {
		return SendResult{}, fmt.Errorf("%w: base URL: %v", ErrConfig, err)
	}
	if !ValidObjectID(phoneNumberID) {
		// It goes into the request path: "..", "/" or "?" would aim the
		// token-bearing request somewhere else on the Graph host.
		return SendResult{}, fmt.Errorf("%w: phone number id %.40q is not a Graph id (digits only)", ErrInvalidMessage, phoneNumberID)
	}
	if err := m.Validate(); err != nil {
		return SendResult{}, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return SendResult{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	u := c.base() + "/" + url.PathEscape(phoneNumberID) + "/messages"
	status, resp, err := c.do(ctx, http.MethodPost, u, body)
	if err != nil {
		return SendResult{}, err
	}
	var ok struct {
		Contacts []struct {
			Input  string `json:"input"`
			WaID   string `json:"wa_id"`
			UserID string `json:"user_id"`
		} `json:"contacts"`
		Messages []struct {
			ID            string `json:"id"`
			MessageStatus string `json:"message_status"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(resp, &ok); err != nil || len(ok.Messages) == 0 || ok.Messages[0].ID == "" {
		// Meta said 2xx, so the message was most likely accepted, but without
		// its wamid the send cannot be reconciled as a success either.
		return SendResult{}, &UnknownOutcomeError{Err: fmt.Errorf("HTTP %d without a message id: %.200q", status, resp)}
	}
	r := SendResult{MessageID: ok.Messages[0].ID, MessageStatus: ok.Messages[0].MessageStatus}
	if len(ok.Contacts) > 0 {
		r.WaID, r.UserID = ok.Contacts[0].WaID, ok.Contacts[0].UserID
	}
	return r, nil
}

// do performs one request and returns a 2xx body, or a typed error. It traces
// the request to tell "never left" from "left, answer lost".
func (c *Client) do(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, &NotSentError{Err: err}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// What the trace saw: a connection attempt, the headers going out, and
	// the end of the write (with or without error).
	var connAttempt, headers, wrote, writeFailed atomic.Bool
	trace := &httptrace.ClientTrace{
		GetConn:      func(string) { connAttempt.Store(true) },
		WroteHeaders: func() { headers.Store(true) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			} else {
				writeFailed.Store(true)
			}
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, u, rd)
	if err != nil {
		return 0, nil, &NotSentError{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.httpClient().Do(req)
	if err != nil {
		switch {
		case wrote.Load():
			// The whole request left: Meta may have acted on it.
			return 0, nil, &UnknownOutcomeError{Err: err}
		case writeFailed.Load():
			// Cut off mid-request: a server cannot act on an incomplete
			// request (Content-Length / END_STREAM missing).
			return 0, nil, &NotSentError{Err: err}
		case headers.Load():
			// Headers out, end of write not (yet) reported: cannot tell.
			return 0, nil, &UnknownOutcomeError{Err: err}
		case connAttempt.Load() || beforeSend(err):
			// Failed while getting a connection (DNS, dial, TLS), or an
			// error that can only happen before sending.
			return 0, nil, &NotSentError{Err: err}
		}
		// A custom RoundTripper that reports nothing through httptrace.
		return 0, nil, &UnknownOutcomeError{Err: err}
	}
	defer res.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if res.StatusCode/100 == 2 {
		if rerr != nil {
			return 0, nil, &UnknownOutcomeError{Err: fmt.Errorf("HTTP %d, reading body: %w", res.StatusCode, rerr)}
		}
		if e := parseAPIError(res.StatusCode, data); e != nil && e.Code != 0 {
			return 0, nil, e
		}
		return res.StatusCode, data, nil
	}
	if e := parseAPIError(res.StatusCode, data); e != nil {
		return 0, nil, e
	}
	msg := http.StatusText(res.StatusCode)
	if rerr != nil {
		msg += ", reading body: " + rerr.Error()
	} else if len(data) > 0 {
		msg += fmt.Sprintf(": %.200q", data)
	}
	return 0, nil, &APIError{HTTPStatus: res.StatusCode, Message: msg}
}

// parseAPIError reads Meta's {"error": {…}} body; nil when there is none.
func parseAPIError(status int, data []byte) *APIError {
	var env struct {
		Error *struct {
			Message      string `json:"message"`
			Type         string `json:"type"`
			Code         int    `json:"code"`
			ErrorSubcode int    `json:"error_subcode"`
			ErrorData    struct {
				Details string `json:"details"`
			} `json:"error_data"`
			// The Conversions API explains its refusals here instead.
			UserMsg   string `json:"error_user_msg"`
			FBTraceID string `json:"fbtrace_id"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) != nil || env.Error == nil {
		return nil
	}
	e := env.Error
	if e.Code == 0 && e.Message == "" {
		return nil
	}
	details := e.ErrorData.Details
	if details == "" {
		details = e.UserMsg
	}
	return &APIError{HTTPStatus: status, Code: e.Code, Subcode: e.ErrorSubcode, Type: e.Type,
		Message: e.Message, Details: details, FBTraceID: e.FBTraceID}
}

// beforeSend recognizes errors that can only happen before a request is
// written: name resolution, dialing, TLS handshake and certificates.
func beforeSend(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &dnsErr), errors.As(err, &recErr), errors.As(err, &certErr),
		errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return true
	case errors.As(err, &opErr):
		return opErr.Op == "dial"
	}
	return false
}

// maxTemplatePages stops a paging loop on a misbehaving server.
const maxTemplatePages = 10000

// ListTemplates returns every message template of the WhatsApp Business
// Account, following paging.next, as Meta's raw JSON objects so nothing
// (components, quality, …) is lost. paging.next must stay on the BaseURL's
// scheme and host: the bearer token is never sent anywhere else.
func (c *Client) ListTemplates(ctx context.Context, wabaID string) ([]json.RawMessage, error) {
	if c.Token == "" {
		return nil, fmt.Errorf("%w: no access token", ErrConfig)
	}
	if wabaID == "" {
		return nil, fmt.Errorf("%w: no WhatsApp Business Account id", ErrConfig)
	}
	if !ValidObjectID(wabaID) {
		return nil, fmt.Errorf("%w: WhatsApp Business Account id %.40q is not a Graph id (digits only)", ErrConfig, wabaID)
	}
	if err := CheckBaseURL(c.base()); err != nil {
		return nil, fmt.Errorf("%w: base URL: %v", ErrConfig, err)
	}
	base, err := url.Parse(c.base())
	if err != nil {
		return nil, fmt.Errorf("%w: base URL: %v", ErrConfig, err)
	}
	next := c.base() + "/" + url.PathEscape(wabaID) + "/message_templates?limit=100&fields=" + url.QueryEscape(TemplateFields)
	seen := map[string]bool{}
	all := []json.RawMessage{}
	for page := 0; next != ""; page++ {
		if page >= maxTemplatePages || seen[next] {
			return nil, fmt.Errorf("whatsapp: templates: paging does not end (page %d, %s)", page, next)
		}
		seen[next] = true
		_, data, err := c.do(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, fmt.Errorf("whatsapp: templates page %d: %w", page+1, err)
		}
		var resp struct {
			Data   []json.RawMessage `json:"data"`
			Paging struct {
				Next string `json:"next"`
			} `json:"paging"`
		}
		if err := json.Unmarshal(data, &resp); err != nil {
			return nil, fmt.Errorf("whatsapp: templates page %d: %w", page+1, err)
		}
		all = append(all, resp.Data...)
		next = resp.Paging.Next
		if next != "" {
			nu, err := url.Parse(next)
			if err != nil || nu.Scheme != base.Scheme || nu.Host != base.Host {
				return nil, fmt.Errorf("whatsapp: templates: refusing paging.next %q outside %s://%s", next, base.Scheme, base.Host)
			}
		}
	}
	return all, nil
}

// TemplateFields are the message template fields ListTemplates asks for:
// what the catalog reads, and the status and quality rating.
const TemplateFields = "name,language,status,category,parameter_format,components,quality_score,id"

// WriteTemplates writes templates in the shape GET /{waba-id}/message_templates
// returns, {"data": […]}, which funnel's template catalog reads unchanged.
func WriteTemplates(w io.Writer, templates []json.RawMessage) error {
	if templates == nil {
		templates = []json.RawMessage{}
	}
	b, err := json.MarshalIndent(struct {
		Data []json.RawMessage `json:"data"`
	}{templates}, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
