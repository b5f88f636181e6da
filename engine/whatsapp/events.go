package whatsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// EventsResult is Meta's answer to a Conversions API request.
type EventsResult struct {
	EventsReceived int    `json:"events_received"`
	FBTraceID      string `json:"fbtrace_id"`
}

// SendEvents posts conversion events to {BaseURL}/{datasetID}/events as
// {"data": [event, …]} (Meta's Conversions API; for business messaging each
// event has action_source "business_messaging" and messaging_channel
// "whatsapp"). Errors are typed as for Send; Classify says what to do with them.
func (c *Client) SendEvents(ctx context.Context, datasetID string, events []json.RawMessage) (EventsResult, error) {
	if c.Token == "" {
		return EventsResult{}, fmt.Errorf("%w: no access token", ErrConfig)
	}
	if err := CheckBaseURL(c.base()); err != nil {
		return EventsResult{}, fmt.Errorf("%w: base URL: %v", ErrConfig, err)
	}
	if !ValidObjectID(datasetID) {
		return EventsResult{}, fmt.Errorf("%w: dataset id %.40q is not a Graph id (digits only)", ErrConfig, datasetID)
	}
	if len(events) == 0 {
		return EventsResult{}, nil
	}
	body, err := json.Marshal(map[string]any{"data": events})
	if err != nil {
		return EventsResult{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	u := c.base() + "/" + url.PathEscape(datasetID) + "/events"
	status, resp, err := c.do(ctx, http.MethodPost, u, body)
	if err != nil {
		return EventsResult{}, err
	}
	var r EventsResult
	if err := json.Unmarshal(resp, &r); err != nil || r.EventsReceived != len(events) {
		return r, &UnknownOutcomeError{Err: fmt.Errorf("HTTP %d: %d events received of %d: %.200q", status, r.EventsReceived, len(events), resp)}
	}
	return r, nil
}
