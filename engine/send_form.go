package engine

import (
	"encoding/json"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// buildForm renders a `form` send: a flow message that opens the WhatsApp Flow
// on its first screen, with the screen's initial data rendered for the
// contact. send sets the flow token (the message's callback data).
func buildForm(f *dsl.Form, to string, render func(*dsl.Text) string) *whatsapp.Message {
	var data json.RawMessage
	if len(f.Data) > 0 {
		values := make(map[string]string, len(f.Data))
		for _, d := range f.Data {
			values[d.Name] = render(d.Value)
		}
		data = mustMarshal(values)
	}
	msg := whatsapp.NewFlow(to, render(f.Body), f.FlowID, render(f.CTA), "", f.Screen, data)
	if f.Mode == "draft" {
		msg.Interactive.Action.Parameters.Mode = "draft"
	}
	decorate(msg.Interactive, f.Header, f.Footer, render)
	return msg
}
