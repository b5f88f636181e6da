package whatsapptest

import (
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
