package whatsapp

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Interactive kinds beyond reply buttons and lists (docs/WHATSAPP.md, "Rich
// messages"): a call-to-action URL button, a WhatsApp Flow (a form) and a
// location request.
const (
	InteractiveCTAURL          = "cta_url"
	InteractiveFlow            = "flow"
	InteractiveLocationRequest = "location_request_message"
)

// Action names Meta expects with each of them.
const (
	ActionCTAURL       = "cta_url"
	ActionFlow         = "flow"
	ActionSendLocation = "send_location"
)

// Limits of the rich interactive messages.
const (
	MaxCTADisplayText = 20
	MaxFlowCTA        = 20
	// FlowMessageVersion is the only version of flow messages Meta accepts.
	FlowMessageVersion = "3"
)

// ActionParameters are the parameters of a cta_url action (DisplayText, URL)
// or of a flow action (the Flow* fields and Mode). One struct holds both, as
// the JSON objects share the "parameters" key; Validate refuses a mix.
type ActionParameters struct {
	DisplayText string `json:"display_text,omitempty"`
	URL         string `json:"url,omitempty"`

	FlowMessageVersion string             `json:"flow_message_version,omitempty"`
	FlowToken          string             `json:"flow_token,omitempty"`
	FlowID             string             `json:"flow_id,omitempty"`
	FlowName           string             `json:"flow_name,omitempty"`
	FlowCTA            string             `json:"flow_cta,omitempty"`
	FlowAction         string             `json:"flow_action,omitempty"`
	FlowActionPayload  *FlowActionPayload `json:"flow_action_payload,omitempty"`
	// Mode is "draft" to send a Flow that is not published yet; empty means
	// "published".
	Mode string `json:"mode,omitempty"`
}

// FlowActionPayload opens the Flow on Screen, with Data as the screen's
// initial data (a non-empty JSON object, or nothing).
type FlowActionPayload struct {
	Screen string          `json:"screen"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// NewCTAURL builds an interactive call-to-action URL button message: a body,
// and a button labelled display that opens url.
func NewCTAURL(to, body, display, url string) *Message {
	m := newMessage(to, TypeInteractive)
	m.Interactive = &Interactive{Type: InteractiveCTAURL, Body: &InteractiveText{Text: body},
		Action: Action{Name: ActionCTAURL, Parameters: &ActionParameters{DisplayText: display, URL: url}}}
	return m
}

// NewFlow builds an interactive flow message: a body and a button labelled
// cta that opens the Flow flowID on screen (navigate), with data as the
// screen's initial data (nil for none). token comes back in the completed
// form's response_json.
func NewFlow(to, body, flowID, cta, token, screen string, data json.RawMessage) *Message {
	m := newMessage(to, TypeInteractive)
	p := &ActionParameters{FlowMessageVersion: FlowMessageVersion, FlowToken: token, FlowID: flowID, FlowCTA: cta,
		FlowAction: "navigate", FlowActionPayload: &FlowActionPayload{Screen: screen, Data: data}}
	m.Interactive = &Interactive{Type: InteractiveFlow, Body: &InteractiveText{Text: body},
		Action: Action{Name: ActionFlow, Parameters: p}}
	return m
}

// NewLocationRequest builds a location request message: the body and a "Send
// location" button; the user's answer arrives as a location message.
func NewLocationRequest(to, body string) *Message {
	m := newMessage(to, TypeInteractive)
	m.Interactive = &Interactive{Type: InteractiveLocationRequest, Body: &InteractiveText{Text: body},
		Action: Action{Name: ActionSendLocation}}
	return m
}

// validateRich checks a cta_url, flow or location request message (body,
// header and footer lengths are checked by the caller).
func (in *Interactive) validateRich() error {
	a := in.Action
	if len(a.Buttons) > 0 || a.Button != "" || len(a.Sections) > 0 {
		return invalid("interactive.action", "%s messages take no reply buttons, list button or sections", in.Type)
	}
	p := a.Parameters
	switch in.Type {
	case InteractiveCTAURL:
		if a.Name != ActionCTAURL {
			return invalid("interactive.action.name", "must be %q, got %q", ActionCTAURL, a.Name)
		}
		if p == nil {
			return invalid("interactive.action.parameters", "required")
		}
		if p.flowSet() {
			return invalid("interactive.action.parameters", "a cta_url action takes only display_text and url")
		}
		if p.DisplayText == "" {
			return invalid("interactive.action.parameters.display_text", "required")
		}
		if n := runes(p.DisplayText); n > MaxCTADisplayText {
			return invalid("interactive.action.parameters.display_text", "%d characters, limit %d", n, MaxCTADisplayText)
		}
		if err := CheckURL(p.URL); err != nil {
			return invalid("interactive.action.parameters.url", "%v", err)
		}
	case InteractiveFlow:
		if a.Name != ActionFlow {
			return invalid("interactive.action.name", "must be %q, got %q", ActionFlow, a.Name)
		}
		if p == nil {
			return invalid("interactive.action.parameters", "required")
		}
		if p.DisplayText != "" || p.URL != "" {
			return invalid("interactive.action.parameters", "a flow action takes no display_text or url")
		}
		if p.FlowMessageVersion != FlowMessageVersion {
			return invalid("interactive.action.parameters.flow_message_version", "must be %q, got %q", FlowMessageVersion, p.FlowMessageVersion)
		}
		if (p.FlowID == "") == (p.FlowName == "") {
			return invalid("interactive.action.parameters.flow_id", "exactly one of flow_id and flow_name is required")
		}
		if p.FlowCTA == "" {
			return invalid("interactive.action.parameters.flow_cta", "required")
		}
		if n := runes(p.FlowCTA); n > MaxFlowCTA {
			return invalid("interactive.action.parameters.flow_cta", "%d characters, limit %d", n, MaxFlowCTA)
		}
		if p.Mode != "" && p.Mode != "draft" && p.Mode != "published" {
			return invalid("interactive.action.parameters.mode", "must be draft or published, got %q", p.Mode)
		}
		switch p.FlowAction {
		case "", "navigate":
			if p.FlowActionPayload == nil || p.FlowActionPayload.Screen == "" {
				return invalid("interactive.action.parameters.flow_action_payload.screen", "required when flow_action is navigate")
			}
			if d := p.FlowActionPayload.Data; len(d) > 0 {
				var obj map[string]any
				if json.Unmarshal(d, &obj) != nil || len(obj) == 0 {
					return invalid("interactive.action.parameters.flow_action_payload.data", "must be a non-empty JSON object")
				}
			}
		case "data_exchange":
			if p.FlowActionPayload != nil {
				return invalid("interactive.action.parameters.flow_action_payload", "must be omitted when flow_action is data_exchange")
			}
		default:
			return invalid("interactive.action.parameters.flow_action", "must be navigate or data_exchange, got %q", p.FlowAction)
		}
	case InteractiveLocationRequest:
		if a.Name != ActionSendLocation {
			return invalid("interactive.action.name", "must be %q, got %q", ActionSendLocation, a.Name)
		}
		if p != nil {
			return invalid("interactive.action.parameters", "a location request takes none")
		}
		if in.Header != nil || in.Footer != nil {
			return invalid("interactive", "a location request has only a body")
		}
	}
	return nil
}

func (p *ActionParameters) flowSet() bool {
	return p.FlowMessageVersion != "" || p.FlowToken != "" || p.FlowID != "" || p.FlowName != "" ||
		p.FlowCTA != "" || p.FlowAction != "" || p.FlowActionPayload != nil || p.Mode != ""
}

// CheckURL accepts an absolute http(s) URL: what a CTA button can open.
func CheckURL(s string) error {
	if s == "" {
		return fmt.Errorf("required")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("%.80q contains white space", s)
	}
	return CheckMediaLink(s)
}
