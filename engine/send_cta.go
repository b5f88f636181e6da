package engine

import (
	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// buildCTAURL renders a `cta_url` send: the body, the button and the URL it
// opens, with the optional text header and footer.
func buildCTAURL(c *dsl.CTAURL, to string, render func(*dsl.Text) string) *whatsapp.Message {
	msg := whatsapp.NewCTAURL(to, render(c.Body), render(c.Button), render(c.URL))
	decorate(msg.Interactive, c.Header, c.Footer, render)
	return msg
}

// decorate adds an interactive message's optional text header and footer.
func decorate(in *whatsapp.Interactive, header, footer *dsl.Text, render func(*dsl.Text) string) {
	if header != nil {
		in.Header = &whatsapp.InteractiveHeader{Type: "text", Text: render(header)}
	}
	if footer != nil {
		in.Footer = &whatsapp.InteractiveText{Text: render(footer)}
	}
}
