package dsl

import (
	"sort"

	"gopkg.in/yaml.v3"
)

// Form is a WhatsApp Flow sent as an interactive flow message: a body and a
// button (CTA) that opens the Flow FlowID on Screen, with Data as the screen's
// initial values. The completed form comes back as the contact's reply
// (`reply.type` "form", its fields in `reply.form`).
type Form struct {
	Pos       Pos
	FlowID    string
	FlowIDPos Pos
	Body      *Text
	CTA       *Text
	Header    *Text
	Footer    *Text
	Screen    string
	ScreenPos Pos
	Data      []*FormDatum // in source order
	DataPos   Pos
	// Mode is "published" (the default) or "draft", to test a Flow not yet
	// published.
	Mode string
	// FlowJSON is the optional path of the Flow JSON (relative to the flow
	// file), and Schema what the validator read from it (nil without one, or
	// when it could not be read: that is reported).
	FlowJSON    string
	FlowJSONPos Pos
	Schema      *FormSchema
}

// FormDatum is one initial value of the form's first screen.
type FormDatum struct {
	Name  string
	Pos   Pos
	Value *Text
}

var formKeys = []string{"flow_id", "text", "cta", "screen", "data", "mode", "header", "footer", "flow_json"}

// parseForm reads `form: {flow_id, text, cta, screen, data, mode, header, footer,
// flow_json}`.
func (p *parser) parseForm(n *yaml.Node) *Form {
	f := &Form{Pos: p.pos(n), Mode: "published"}
	ps, ok := p.mapping(n, "`form`")
	if !ok {
		return nil
	}
	p.checkKeys(ps, "`form`", formKeys...)
	for _, kv := range ps {
		switch kv.key {
		case "flow_id":
			if id, ok := p.id(kv.value, "the form `flow_id`"); ok {
				f.FlowID, f.FlowIDPos = id, p.pos(p.resolve(kv.value))
			}
		case "text":
			f.Body = p.text(kv.value, "the form `text`")
		case "cta":
			f.CTA = p.text(kv.value, "the form `cta`")
		case "header":
			f.Header = p.text(kv.value, "the form `header`")
		case "footer":
			f.Footer = p.text(kv.value, "the form `footer`")
		case "screen":
			if s, ok := p.id(kv.value, "the form `screen`"); ok {
				f.Screen, f.ScreenPos = s, p.pos(p.resolve(kv.value))
			}
		case "mode":
			if m, ok := p.str(kv.value, "the form `mode`"); ok {
				if m != "published" && m != "draft" {
					p.errorf(p.pos(p.resolve(kv.value)), RuleSchema, "the form `mode` is `published` or `draft`, not %q", m)
				} else {
					f.Mode = m
				}
			}
		case "flow_json":
			if s, ok := p.id(kv.value, "the form `flow_json`"); ok {
				f.FlowJSON, f.FlowJSONPos = s, p.pos(p.resolve(kv.value))
			}
		case "data":
			f.DataPos = p.pos(kv.kNode)
			dps, ok := p.mapping(kv.value, "the form `data`")
			if !ok {
				continue
			}
			if len(dps) == 0 {
				p.errorf(f.DataPos, RuleSchema, "the form `data` is empty: give the screen's initial values, or leave `data` out")
			}
			for _, d := range dps {
				if !varNameRe.MatchString(d.key) {
					p.errorf(p.pos(d.kNode), RuleSchema, "invalid name `%s` in the form `data`: use letters, digits and `_`", d.key)
					continue
				}
				if v := p.paramText(d.value); v != nil {
					f.Data = append(f.Data, &FormDatum{Name: d.key, Pos: p.pos(d.kNode), Value: v})
				}
			}
		}
	}
	for _, req := range []struct {
		missing bool
		msg     string
	}{
		{f.FlowID == "", "`form` needs `flow_id`: the id of the published WhatsApp Flow"},
		{f.Body == nil, "`form` needs `text`: the message above the button that opens the form"},
		{f.CTA == nil, "`form` needs `cta`: the label of the button that opens the form"},
		{f.Screen == "", "`form` needs `screen`: the id of the Flow's first screen"},
	} {
		if req.missing {
			p.errorf(f.Pos, RuleSchema, "%s", req.msg)
		}
	}
	return f
}

// FormSchema is what a Flow JSON tells about the form: its screens, and the
// fields its completion returns with their types.
type FormSchema struct {
	Screens []string
	Fields  map[string]FormField
}

// FormField is one field of a completed form.
type FormField struct {
	Name string `json:"name"`
	// Type is "string", "number", "boolean" or "list"; "any" when the Flow
	// JSON does not say.
	Type string `json:"type"`
	// Label is what the form shows (the component's label), for the sandbox.
	Label string `json:"label,omitempty"`
	// Input is the component that fills it ("TextInput", "OptIn", …); empty
	// for a constant of the payload.
	Input string `json:"input,omitempty"`
	// Value is a constant of the payload: what the field always holds.
	Value any `json:"value,omitempty"`
}

// FieldNames lists the fields in name order.
func (s *FormSchema) FieldNames() []string {
	var ns []string
	for n := range s.Fields {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}
