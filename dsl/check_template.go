package dsl

import (
	"fmt"
	"regexp"
	"strings"
)

var templateNameRe = regexp.MustCompile(`^[a-z0-9_]+$`)

// checkTemplates resolves every template send and fallback against the catalog:
// the template exists in that language (the step's, else the flow's), is APPROVED,
// gets exactly its parameters, and gets header media when its header needs it.
func (c *checker) checkTemplates() {
	c.eachSend(func(f *Flow, s *Step) {
		if s.Send.Template != nil {
			c.checkTemplateRef(f, s, s.Send.Template, "template")
		}
		if s.Send.Fallback != nil {
			c.checkTemplateRef(f, s, s.Send.Fallback, "fallback template")
		}
	})
}

func (c *checker) checkTemplateRef(f *Flow, s *Step, t *TemplateRef, what string) {
	errorf := func(pos Pos, rule, format string, args ...any) {
		c.report(f, s, pos, SevError, rule, fmt.Sprintf(format, args...), nil)
	}
	if !templateNameRe.MatchString(t.Name) {
		errorf(t.Pos, RuleLimits, "%s name `%s` is not a valid WhatsApp template name: use lowercase letters, digits and `_`", what, t.Name)
		return
	}
	cat := c.p.Catalog(f)
	if cat == nil {
		errorf(t.Pos, RuleTemplate, "%s `%s` cannot be checked: no template catalog (pass --templates, or put templates.json from `funnel templates pull` beside the flows)", what, t.Name)
		return
	}
	langs := cat.Languages(t.Name)
	if len(langs) == 0 {
		names := cat.Names()
		errorf(t.Pos, RuleTemplate, "unknown %s `%s`%s (catalog %s has: %s)", what, t.Name, didYouMean(t.Name, names), cat.File, strings.Join(names, ", "))
		return
	}
	lang, langPos := t.Language, t.LanguagePos
	if lang == "" {
		lang, langPos = f.Language, t.Pos
	}
	if lang == "" {
		if len(langs) != 1 {
			errorf(t.Pos, RuleTemplate, "%s `%s` exists in %s: set `language:` on the step or the flow", what, t.Name, strings.Join(langs, ", "))
			return
		}
		lang = langs[0]
	}
	tpl, ok := cat.Lookup(t.Name, lang)
	if !ok {
		errorf(langPos, RuleTemplate, "%s `%s` has no `%s` version%s (languages: %s)", what, t.Name, lang, didYouMean(lang, langs), strings.Join(langs, ", "))
		return
	}
	t.Resolved = tpl
	if !tpl.Approved() {
		since := ""
		if !tpl.StatusChangedAt.IsZero() {
			since = " since " + tpl.StatusChangedAt.UTC().Format("2006-01-02")
		}
		errorf(t.Pos, RuleTemplate, "%s `%s` (%s) is %s%s, not APPROVED: %s", what, t.Name, lang, tpl.Status, since, statusHint(tpl.Status))
	}
	c.checkParams(f, s, t, tpl, what)
	c.checkHeader(f, s, t, tpl, what)
}

func statusHint(status string) string {
	switch status {
	case "PENDING", "IN_APPEAL":
		return "Meta has not approved it yet, and sends would fail with 132001"
	case "REJECTED":
		return "Meta rejected it; edit and resubmit it, or use another template"
	case "PAUSED":
		return "Meta paused it for low quality; sends fail with 132015 (a running daemon holds them until Meta approves it again)"
	case "DISABLED":
		return "Meta disabled it; sends fail with 132016 (a running daemon holds them)"
	}
	return "only APPROVED templates can be sent"
}

func (c *checker) checkParams(f *Flow, s *Step, t *TemplateRef, tpl *Template, what string) {
	errorf := func(pos Pos, format string, args ...any) {
		c.report(f, s, pos, SevError, RuleTemplate, fmt.Sprintf(format, args...), nil)
	}
	pos := t.ParamsPos
	if !pos.IsValid() {
		pos = t.Pos
	}
	want := tpl.BodyParams
	if tpl.Named() {
		if len(t.Params) > 0 {
			errorf(pos, "%s `%s` uses named parameters (%s): give `params` as a mapping", what, t.Name, placeholderList(want))
			return
		}
		got := map[string]bool{}
		for _, np := range t.Named {
			got[np.Name] = true
			if !contains(want, np.Name) {
				errorf(np.Pos, "%s `%s` has no parameter `%s`%s (parameters: %s)", what, t.Name, np.Name, didYouMean(np.Name, want), placeholderList(want))
			}
		}
		var missing []string
		for _, w := range want {
			if !got[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			errorf(pos, "%s `%s` needs %s; missing: %s", what, t.Name, placeholderList(want), placeholderList(missing))
		}
		return
	}
	if len(t.Named) > 0 {
		errorf(pos, "%s `%s` uses positional parameters (%s): give `params` as a list", what, t.Name, placeholderList(want))
		return
	}
	if len(t.Params) != len(want) {
		errorf(pos, "%s `%s` takes %d parameter%s (%s), got %d", what, t.Name, len(want), plural(len(want)), placeholderList(want), len(t.Params))
	}
}

func (c *checker) checkHeader(f *Flow, s *Step, t *TemplateRef, tpl *Template, what string) {
	errorf := func(pos Pos, format string, args ...any) {
		c.report(f, s, pos, SevError, RuleTemplate, fmt.Sprintf(format, args...), nil)
	}
	switch {
	case tpl.MediaHeader() && t.Header == nil:
		errorf(t.Pos, "%s `%s` has a%s %s header: give `header:` with the media link", what, t.Name, article(tpl.HeaderFormat), strings.ToLower(tpl.HeaderFormat))
	case tpl.HeaderFormat == "TEXT" && len(tpl.HeaderParams) > 0 && t.Header == nil:
		errorf(t.Pos, "%s `%s` has a text header with a parameter (%s): give `header:` with its value", what, t.Name, tpl.HeaderText)
	case t.Header != nil && !tpl.MediaHeader() && !(tpl.HeaderFormat == "TEXT" && len(tpl.HeaderParams) > 0):
		errorf(t.HeaderPos, "%s `%s` has no header that takes a value; remove `header:`", what, t.Name)
	}
}

func article(format string) string {
	if format == "IMAGE" {
		return "n"
	}
	return ""
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func placeholderList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "{{" + n + "}}"
	}
	return strings.Join(q, ", ")
}
