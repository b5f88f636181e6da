package dsl

import "gopkg.in/yaml.v3"

// CTAURL is an interactive call-to-action URL button message: a body and one
// button that opens URL in the contact's browser. Tapping it sends nothing
// back, so a wait_for_reply after it waits for whatever the contact writes next.
type CTAURL struct {
	Pos    Pos
	Body   *Text
	Button *Text // the button's label (Meta's display_text)
	URL    *Text
	Header *Text
	Footer *Text
}

// parseCTAURL reads `cta_url: {text, button, url, header, footer}`.
func (p *parser) parseCTAURL(n *yaml.Node) *CTAURL {
	c := &CTAURL{Pos: p.pos(n)}
	ps, ok := p.mapping(n, "`cta_url`")
	if !ok {
		return nil
	}
	p.checkKeys(ps, "`cta_url`", "text", "button", "url", "header", "footer")
	for _, kv := range ps {
		switch kv.key {
		case "text":
			c.Body = p.text(kv.value, "the cta_url `text`")
		case "button":
			c.Button = p.text(kv.value, "the cta_url `button`")
		case "url":
			c.URL = p.text(kv.value, "the cta_url `url`")
		case "header":
			c.Header = p.text(kv.value, "the cta_url `header`")
		case "footer":
			c.Footer = p.text(kv.value, "the cta_url `footer`")
		}
	}
	if c.Body == nil {
		p.errorf(c.Pos, RuleSchema, "`cta_url` needs `text`: the message above the button")
	}
	if c.Button == nil {
		p.errorf(c.Pos, RuleSchema, "`cta_url` needs `button`: the label of the button")
	}
	if c.URL == nil {
		p.errorf(c.Pos, RuleSchema, "`cta_url` needs `url`: the http(s) address the button opens")
	}
	return c
}
