package dsl

import "gopkg.in/yaml.v3"

// LocationRequest asks the contact to share a location: a body and WhatsApp's
// own "Send location" button. The answer is the contact's next message, a
// location (`reply.type` "location", `reply.location.latitude` …).
type LocationRequest struct {
	Pos  Pos
	Body *Text
}

// parseLocationRequest reads `location_request: "text"` or `{text: "…"}`.
func (p *parser) parseLocationRequest(n *yaml.Node) *LocationRequest {
	l := &LocationRequest{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		l.Body = p.text(n, "the `location_request` text")
		return l
	}
	ps, ok := p.mapping(n, "`location_request`")
	if !ok {
		return nil
	}
	p.checkKeys(ps, "`location_request`", "text")
	for _, kv := range ps {
		if kv.key == "text" {
			l.Body = p.text(kv.value, "the `location_request` text")
		}
	}
	if l.Body == nil {
		p.errorf(l.Pos, RuleSchema, "`location_request` needs `text`: the message above the Send location button")
	}
	return l
}
