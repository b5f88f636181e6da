package dsl

import (
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	sendBodies   = []string{"text", "image", "video", "document", "list", "cta_url", "form", "location_request", "template"}
	sendKeys     = []string{"text", "buttons", "image", "video", "document", "list", "cta_url", "form", "location_request", "template", "language", "params", "header", "fallback"}
	templateOnly = []string{"language", "params", "header"}
)

// parseSend reads a `send` action. `send: "Hi"` is short for `send: {text: "Hi"}`.
func (p *parser) parseSend(n *yaml.Node) *Send {
	s := &Send{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		s.Text = p.text(n, "`send`")
		return s
	}
	ps, ok := p.mapping(n, "`send`")
	if !ok {
		return nil
	}
	p.checkKeys(ps, "`send`", sendKeys...)
	var bodies []pair
	keys := map[string]pair{}
	for _, kv := range ps {
		keys[kv.key] = kv
		if contains(sendBodies, kv.key) {
			bodies = append(bodies, kv)
		}
	}
	switch len(bodies) {
	case 0:
		p.errorf(s.Pos, RuleSchema, "`send` needs one of %s", strings.Join(sendBodies, ", "))
		return nil
	case 1:
	default:
		p.errorf(p.pos(bodies[1].kNode), RuleSchema, "`send` holds one message; found `%s` and `%s` (use two steps)", bodies[0].key, bodies[1].key)
	}
	body := bodies[0]
	for _, k := range templateOnly {
		if kv, ok := keys[k]; ok && body.key != "template" {
			p.errorf(p.pos(kv.kNode), RuleSchema, "`%s` belongs to a template send; this step sends `%s`", k, body.key)
		}
	}
	if kv, ok := keys["buttons"]; ok && body.key != "text" {
		p.errorf(p.pos(kv.kNode), RuleSchema, "`buttons` go with `text`; %s cannot carry reply buttons", withArticle(body.key))
	}
	switch body.key {
	case "text":
		s.Text = p.text(body.value, "`text`")
		if kv, ok := keys["buttons"]; ok {
			s.Buttons = p.parseButtons(kv.value)
		}
	case "image", "video", "document":
		s.Media = p.parseMedia(body.key, body.value)
	case "list":
		s.List = p.parseList(body.value)
	case "cta_url":
		s.CTA = p.parseCTAURL(body.value)
	case "form":
		s.Form = p.parseForm(body.value)
	case "location_request":
		s.LocationRequest = p.parseLocationRequest(body.value)
	case "template":
		ps2 := []pair{body}
		for _, k := range templateOnly {
			if kv, ok := keys[k]; ok {
				ps2 = append(ps2, kv)
			}
		}
		s.Template = p.parseTemplateRef(ps2, p.pos(body.kNode))
		if kv, ok := keys["fallback"]; ok {
			p.errorf(p.pos(kv.kNode), RuleSchema, "`fallback` is for free-form messages; this step already sends a template")
		}
	}
	if kv, ok := keys["fallback"]; ok && body.key != "template" {
		s.Fallback = p.parseFallback(kv.value)
	}
	return s
}

func (p *parser) parseButtons(n *yaml.Node) []*Button {
	items, ok := p.seq(n, "`buttons`")
	if !ok {
		return nil
	}
	var out []*Button
	for _, item := range items {
		b := &Button{Pos: p.pos(item)}
		if item.Kind == yaml.MappingNode {
			ps, _ := p.mapping(item, "a button")
			p.checkKeys(ps, "a button", "id", "title")
			for _, kv := range ps {
				switch kv.key {
				case "id":
					b.ID, _ = p.str(kv.value, "the button `id`")
				case "title":
					b.Title = p.text(kv.value, "the button `title`")
				}
			}
		} else {
			b.Title = p.text(item, "a button title")
		}
		if b.Title == nil {
			if item.Kind == yaml.MappingNode {
				p.errorf(b.Pos, RuleSchema, "a button needs a `title`")
			}
			continue
		}
		if b.ID == "" {
			b.ID = b.Title.Raw
		}
		out = append(out, b)
	}
	return out
}

func (p *parser) parseMedia(kind string, n *yaml.Node) *Media {
	m := &Media{Kind: kind, Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode {
		m.Link = p.text(n, "the "+kind+" link")
		return m
	}
	ps, ok := p.mapping(n, "`"+kind+"`")
	if !ok {
		return nil
	}
	allowed := []string{"link", "caption"}
	if kind == "document" {
		allowed = append(allowed, "filename")
	}
	p.checkKeys(ps, "`"+kind+"`", allowed...)
	for _, kv := range ps {
		switch kv.key {
		case "link":
			m.Link = p.text(kv.value, "`link`")
		case "caption":
			m.Caption = p.text(kv.value, "`caption`")
		case "filename":
			m.Filename = p.text(kv.value, "`filename`")
		}
	}
	if m.Link == nil {
		p.errorf(m.Pos, RuleSchema, "`%s` needs a `link` (an https URL to the media)", kind)
	}
	return m
}

// parseList reads an interactive list: `text` (or `body`), `button`, optional
// `header`/`footer`, and `sections` of `rows` (or `rows` directly for one section).
// A row is a title, or {id, title, description}.
func (p *parser) parseList(n *yaml.Node) *List {
	l := &List{Pos: p.pos(n)}
	ps, ok := p.mapping(n, "`list`")
	if !ok {
		return nil
	}
	p.checkKeys(ps, "`list`", "text", "body", "button", "header", "footer", "sections", "rows")
	for _, kv := range ps {
		switch kv.key {
		case "text", "body":
			if l.Body != nil {
				p.errorf(p.pos(kv.kNode), RuleSchema, "`list` has both `text` and `body`; they are the same thing")
			}
			l.Body = p.text(kv.value, "the list `"+kv.key+"`")
		case "button":
			l.Button = p.text(kv.value, "the list `button`")
		case "header":
			l.Header = p.text(kv.value, "the list `header`")
		case "footer":
			l.Footer = p.text(kv.value, "the list `footer`")
		case "rows":
			sec := &ListSection{Pos: p.pos(kv.kNode)}
			sec.Rows = p.parseRows(kv.value)
			l.Sections = append(l.Sections, sec)
		case "sections":
			items, _ := p.seq(kv.value, "`sections`")
			for _, item := range items {
				sps, ok := p.mapping(item, "a list section")
				if !ok {
					continue
				}
				p.checkKeys(sps, "a list section", "title", "rows")
				sec := &ListSection{Pos: p.pos(item)}
				for _, skv := range sps {
					switch skv.key {
					case "title":
						sec.Title = p.text(skv.value, "the section `title`")
					case "rows":
						sec.Rows = p.parseRows(skv.value)
					}
				}
				l.Sections = append(l.Sections, sec)
			}
		}
	}
	if l.Body == nil {
		p.errorf(l.Pos, RuleSchema, "`list` needs `text`: the message body above the list button")
	}
	if l.Button == nil {
		p.errorf(l.Pos, RuleSchema, "`list` needs `button`: the label of the button that opens the list")
	}
	if len(l.Sections) == 0 {
		p.errorf(l.Pos, RuleSchema, "`list` needs `rows` (or `sections` with `rows`)")
	}
	return l
}

func (p *parser) parseRows(n *yaml.Node) []*ListRow {
	items, _ := p.seq(n, "`rows`")
	var rows []*ListRow
	for _, item := range items {
		r := &ListRow{Pos: p.pos(item)}
		if item.Kind == yaml.MappingNode {
			ps, _ := p.mapping(item, "a list row")
			p.checkKeys(ps, "a list row", "id", "title", "description")
			for _, kv := range ps {
				switch kv.key {
				case "id":
					r.ID, _ = p.str(kv.value, "the row `id`")
				case "title":
					r.Title = p.text(kv.value, "the row `title`")
				case "description":
					r.Description = p.text(kv.value, "the row `description`")
				}
			}
		} else {
			r.Title = p.text(item, "a list row")
		}
		if r.Title == nil {
			if item.Kind == yaml.MappingNode {
				p.errorf(r.Pos, RuleSchema, "a list row needs a `title`")
			}
			continue
		}
		if r.ID == "" {
			r.ID = r.Title.Raw
		}
		rows = append(rows, r)
	}
	return rows
}

// parseTemplateRef reads `template` with its `language`, `params` and `header`.
func (p *parser) parseTemplateRef(ps []pair, at Pos) *TemplateRef {
	t := &TemplateRef{Pos: at}
	for _, kv := range ps {
		switch kv.key {
		case "template":
			if name, ok := p.id(kv.value, "the template name"); ok {
				t.Name, t.Pos = name, p.pos(p.resolve(kv.value))
			}
		case "language":
			if l, ok := p.str(kv.value, "`language`"); ok {
				t.Language, t.LanguagePos = l, p.pos(p.resolve(kv.value))
			}
		case "params":
			t.ParamsPos = p.pos(kv.kNode)
			p.parseParams(t, kv.value)
		case "header":
			t.HeaderPos = p.pos(kv.kNode)
			t.Header = p.text(kv.value, "the template `header`")
		}
	}
	if t.Name == "" {
		return nil
	}
	return t
}

// parseParams reads a list (positional {{1}}…) or a mapping (named {{name}}).
func (p *parser) parseParams(t *TemplateRef, n *yaml.Node) {
	n = p.resolve(n)
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.SequenceNode:
		items, _ := p.seq(n, "`params`")
		for _, item := range items {
			if tx := p.paramText(item); tx != nil {
				t.Params = append(t.Params, tx)
			}
		}
	case yaml.MappingNode:
		ps, _ := p.mapping(n, "`params`")
		for _, kv := range ps {
			if tx := p.paramText(kv.value); tx != nil {
				t.Named = append(t.Named, &NamedParam{Name: kv.key, Pos: p.pos(kv.kNode), Value: tx})
			}
		}
	default:
		p.errorf(p.pos(n), RuleSchema, "`params` must be a list (for {{1}}, {{2}}, …) or a mapping (for named {{first_name}}), found %s", describeNode(n))
	}
}

// paramText accepts strings, and numbers as their text.
func (p *parser) paramText(n *yaml.Node) *Text {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!bool") {
		t := StaticText(n.Value)
		t.Pos = p.pos(n)
		return t
	}
	return p.text(n, "a template parameter")
}

func (p *parser) parseFallback(n *yaml.Node) *TemplateRef {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return p.parseTemplateRef([]pair{{key: "template", kNode: n, value: n}}, p.pos(n))
	}
	ps, ok := p.mapping(n, "`fallback`")
	if !ok {
		return nil
	}
	p.checkKeys(ps, "`fallback`", "template", "language", "params", "header")
	has := false
	for _, kv := range ps {
		has = has || kv.key == "template"
	}
	if !has {
		p.errorf(p.pos(n), RuleSchema, "`fallback` needs `template`: the approved template sent when the window is closed")
		return nil
	}
	return p.parseTemplateRef(ps, p.pos(n))
}

// ParamNames lists the names a template ref supplies: "1", "2", … for positional
// params, the keys for named ones, sorted the way templates number them.
func (t *TemplateRef) ParamNames() []string {
	if len(t.Named) > 0 {
		var ns []string
		for _, n := range t.Named {
			ns = append(ns, n.Name)
		}
		sort.Strings(ns)
		return ns
	}
	ns := make([]string, len(t.Params))
	for i := range t.Params {
		ns[i] = strconv.Itoa(i + 1)
	}
	return ns
}
