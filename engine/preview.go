package engine

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

var previewPlaceholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}`)

// Preview renders a message as the contact would read it: the text, the
// interactive body with its buttons (a call-to-action button with the address
// it opens), a caption, or a template's body with its
// parameters filled in from the catalog (nil catalog: the template name and
// parameters).
func Preview(m *whatsapp.Message, cat *dsl.Catalog) string {
	switch {
	case m == nil:
		return ""
	case m.Text != nil:
		return m.Text.Body
	case m.Interactive != nil:
		var b strings.Builder
		if m.Interactive.Body != nil {
			b.WriteString(m.Interactive.Body.Text)
		}
		for _, bt := range m.Interactive.Action.Buttons {
			b.WriteString(" [" + bt.Reply.Title + "]")
		}
		if m.Interactive.Action.Button != "" {
			b.WriteString(" [" + m.Interactive.Action.Button + " ▾]")
		}
		if p := m.Interactive.Action.Parameters; p != nil {
			switch m.Interactive.Type {
			case whatsapp.InteractiveCTAURL:
				b.WriteString(" [" + p.DisplayText + " → " + p.URL + "]")
			case whatsapp.InteractiveFlow:
				b.WriteString(" [" + p.FlowCTA + " ▤]")
			}
		}
		if m.Interactive.Type == whatsapp.InteractiveLocationRequest {
			b.WriteString(" [Send location 📍]")
		}
		return b.String()
	case m.Image != nil:
		return m.Image.Caption
	case m.Video != nil:
		return m.Video.Caption
	case m.Document != nil:
		return m.Document.Caption
	case m.Template != nil:
		return previewTemplate(m.Template, cat)
	}
	return ""
}

func previewTemplate(t *whatsapp.Template, cat *dsl.Catalog) string {
	var positional []string
	for _, c := range t.Components {
		if c.Type == "body" {
			for _, p := range c.Parameters {
				positional = append(positional, p.Text)
			}
		}
	}
	tpl, ok := cat.Lookup(t.Name, t.Language.Code)
	if !ok {
		return t.Name + "(" + strings.Join(positional, ", ") + ")"
	}
	body := PreviewBody(t, tpl)
	for _, bt := range tpl.Buttons {
		body += " [" + bt.Text + "]"
	}
	return body
}

// PreviewBody is a template's body with the message's parameters filled in.
func PreviewBody(t *whatsapp.Template, tpl *dsl.Template) string {
	params := map[string]string{}
	n := 0
	for _, c := range t.Components {
		if c.Type != "body" {
			continue
		}
		for _, p := range c.Parameters {
			if p.ParameterName != "" {
				params[p.ParameterName] = p.Text
			} else {
				n++
				params[itoa(n)] = p.Text
			}
		}
	}
	return previewPlaceholder.ReplaceAllStringFunc(tpl.Body, func(s string) string {
		name := previewPlaceholder.FindStringSubmatch(s)[1]
		if v, ok := params[name]; ok {
			return v
		}
		return s
	})
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// DescribeForm renders a completed form's fields for people: "name=Ana,
// size=M", in name order, the flow token left out.
func DescribeForm(form map[string]any) string {
	names := make([]string, 0, len(form))
	for n := range form {
		if n != "flow_token" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		v, _ := json.Marshal(form[n])
		s := string(v)
		if str, ok := form[n].(string); ok {
			s = str
		}
		parts[i] = n + "=" + s
	}
	return "form: " + strings.Join(parts, ", ")
}

// DescribeLocation renders a shared location: "📍 Home, 1 Main St (38.72, -9.14)".
func DescribeLocation(l *whatsapp.Location) string {
	s := "📍 "
	for _, p := range []string{l.Name, l.Address} {
		if p != "" {
			s += p + ", "
		}
	}
	return strings.TrimSuffix(s, ", ") + fmt.Sprintf(" (%g, %g)", l.Latitude, l.Longitude)
}
