package dsl

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits of one template text parameter: a template's body holds 1,024
// characters, a text header 60.
const (
	MaxTemplateBodyParam   = 1024
	MaxTemplateHeaderParam = 60
)

const mediaWhy = "WhatsApp fetches media only over http(s)"

// checkParamValues reports values WhatsApp refuses at send time, where the flow
// already decides them: template parameters with a new line, a tab or more
// than four consecutive spaces (in any literal part: the value will hold it
// whatever its ${…} render to), static parameters longer than their component
// allows, and media links and call-to-action URLs that are not http(s) URLs.
// The runtime refuses the same values before calling the API; this rule moves
// the finding to CI.
func (c *checker) checkParamValues() {
	c.eachSend(func(f *Flow, s *Step) {
		m := s.Send
		errorf := func(pos Pos, format string, args ...any) {
			c.report(f, s, pos, SevError, RuleParams, fmt.Sprintf(format, args...), nil)
		}
		param := func(t *Text, what string, max int) {
			if t == nil {
				return
			}
			lit := t.Literal()
			switch {
			case strings.ContainsAny(lit, "\n\r"):
				errorf(t.Pos, "%s has a new line; WhatsApp refuses new lines in template parameters (put them in the template's text)", what)
			case strings.Contains(lit, "\t"):
				errorf(t.Pos, "%s has a tab; WhatsApp refuses tabs in template parameters", what)
			case strings.Contains(lit, "     "):
				errorf(t.Pos, "%s has more than 4 consecutive spaces; WhatsApp refuses that in template parameters", what)
			}
			if n := utf8.RuneCountInString(lit); n > max {
				least := ""
				if !t.IsStatic() {
					least = "at least "
				}
				errorf(t.Pos, "%s is %s%d characters; WhatsApp allows at most %d", what, least, n, max)
			}
		}
		link := func(t *Text, what string, why string) {
			if t == nil || len(t.parts) == 0 || t.parts[0].expr != nil || t.broken || (t.IsStatic() && strings.Contains(t.Raw, "${")) {
				return // the value starts with ${…} (or its ${…} is broken, reported elsewhere): known at send time only
			}
			lit := t.parts[0].lit
			if t.IsStatic() {
				if u, err := url.Parse(lit); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					errorf(t.Pos, "%s %q is not an http(s) URL; %s", what, lit, why)
				}
				return
			}
			l := strings.ToLower(lit)
			if !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") && !strings.HasPrefix("https://", l) && !strings.HasPrefix("http://", l) {
				errorf(t.Pos, "%s starts with %q, not http:// or https://; %s", what, lit, why)
			}
		}
		if m.Media != nil {
			link(m.Media.Link, "the "+m.Media.Kind+" link", mediaWhy)
		}
		if m.CTA != nil {
			link(m.CTA.URL, "the cta_url `url`", "a call-to-action button opens only http(s) addresses")
		}
		for _, t := range []*TemplateRef{m.Template, m.Fallback} {
			if t == nil {
				continue
			}
			for i, p := range t.Params {
				param(p, fmt.Sprintf("parameter {{%d}} of `%s`", i+1, t.Name), MaxTemplateBodyParam)
			}
			for _, np := range t.Named {
				param(np.Value, fmt.Sprintf("parameter {{%s}} of `%s`", np.Name, t.Name), MaxTemplateBodyParam)
			}
			if t.Header != nil && t.Resolved != nil {
				if t.Resolved.MediaHeader() {
					link(t.Header, fmt.Sprintf("the header link of `%s`", t.Name), mediaWhy)
				} else {
					param(t.Header, fmt.Sprintf("the header parameter of `%s`", t.Name), MaxTemplateHeaderParam)
				}
			}
		}
	})
}
