package whatsapptest

import (
	"encoding/json"
	"net/url"
	"unicode/utf8"

	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// Checks of the rich interactive messages as Meta documents them
// (docs/WHATSAPP.md, "Rich messages"), written apart from whatsapp.Validate so
// the fake does not trust the code it tests.

// checkCTAURL: action.name "cta_url", parameters.display_text of 1 to 20
// characters, parameters.url an absolute http(s) URL, nothing else.
func checkCTAURL(in *whatsapp.Interactive) (int, string) {
	a := in.Action
	if a.Name != "cta_url" {
		return 131009, "Parameter action['name'] must be cta_url."
	}
	if len(a.Buttons) > 0 || a.Button != "" || len(a.Sections) > 0 {
		return 131009, "A cta_url action takes only name and parameters."
	}
	p := a.Parameters
	if p == nil || p.DisplayText == "" || p.URL == "" {
		return 131008, "The parameters action['parameters']['display_text'] and ['url'] are required."
	}
	if p.FlowID != "" || p.FlowCTA != "" || p.FlowToken != "" || p.FlowActionPayload != nil || p.Mode != "" {
		return 131009, "A cta_url action takes only display_text and url."
	}
	if utf8.RuneCountInString(p.DisplayText) > 20 {
		return 131009, "Parameter display_text must be at most 20 characters."
	}
	if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return 131009, "Parameter url must be a valid http(s) URL."
	}
	return 0, ""
}

// checkFlow: action.name "flow"; parameters flow_message_version "3", one of
// flow_id and flow_name, flow_cta of 1 to 20 characters, mode draft or
// published, and for flow_action navigate (the default) a
// flow_action_payload with a screen and, when given, non-empty object data.
func checkFlow(in *whatsapp.Interactive) (int, string) {
	a := in.Action
	if a.Name != "flow" {
		return 131009, "Parameter action['name'] must be flow."
	}
	p := a.Parameters
	if p == nil {
		return 131008, "The parameter action['parameters'] is required."
	}
	if p.DisplayText != "" || p.URL != "" || len(a.Buttons) > 0 || len(a.Sections) > 0 {
		return 131009, "A flow action takes only flow parameters."
	}
	if p.FlowMessageVersion != "3" {
		return 131009, "Parameter flow_message_version must be 3."
	}
	if (p.FlowID == "") == (p.FlowName == "") {
		return 131008, "Exactly one of flow_id and flow_name is required."
	}
	if p.FlowCTA == "" || utf8.RuneCountInString(p.FlowCTA) > 20 {
		return 131009, "Parameter flow_cta must be 1 to 20 characters."
	}
	if p.Mode != "" && p.Mode != "draft" && p.Mode != "published" {
		return 131009, "Parameter mode must be draft or published."
	}
	switch p.FlowAction {
	case "", "navigate":
		if p.FlowActionPayload == nil || p.FlowActionPayload.Screen == "" {
			return 131008, "The parameter flow_action_payload['screen'] is required for navigate."
		}
		if d := p.FlowActionPayload.Data; len(d) > 0 {
			var obj map[string]any
			if json.Unmarshal(d, &obj) != nil || len(obj) == 0 {
				return 131009, "Parameter flow_action_payload['data'] must be a non-empty object."
			}
		}
	case "data_exchange":
		if p.FlowActionPayload != nil {
			return 131009, "Parameter flow_action_payload must be omitted for data_exchange."
		}
	default:
		return 131009, "Parameter flow_action must be navigate or data_exchange."
	}
	return 0, ""
}

// checkLocationRequest: a body and action {"name": "send_location"}, nothing
// else.
func checkLocationRequest(in *whatsapp.Interactive) (int, string) {
	a := in.Action
	if a.Name != "send_location" {
		return 131009, "Parameter action['name'] must be send_location."
	}
	if a.Parameters != nil || len(a.Buttons) > 0 || a.Button != "" || len(a.Sections) > 0 || in.Header != nil || in.Footer != nil {
		return 131009, "A location request takes only a body and action['name']."
	}
	return 0, ""
}
