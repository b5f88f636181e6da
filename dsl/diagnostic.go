package dsl

import (
	"fmt"
	"sort"
)

// Severity of a diagnostic.
type Severity string

const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Rule names, as shown in brackets after each message and in the JSON output.
const (
	RuleSyntax      = "syntax"
	RuleSchema      = "schema"
	RuleReference   = "reference"
	RuleExpression  = "expression"
	RuleWindow      = "window"
	RuleTemplate    = "template"
	RuleOptIn       = "opt-in"
	RuleLimits      = "limits"
	RuleParams      = "params"
	RuleUnreachable = "unreachable"
	RuleTrigger     = "trigger"
	RulePhoneOnly   = "phone-only"
	RuleForm        = "form"
)

// Rules lists every rule with a one-line description (used by SARIF and the docs).
var Rules = []struct{ ID, Description string }{
	{RuleSyntax, "The file is not well-formed YAML, or uses YAML in a way funnel refuses (duplicate keys, alias bombs)."},
	{RuleSchema, "A key, type or value does not match the flow language."},
	{RuleReference, "A step, flow or id reference that does not resolve, or an id defined twice."},
	{RuleExpression, "An expression or ${…} interpolation that does not compile against the typed environment."},
	{RuleWindow, "A free-form message that can be sent 24 hours or more after the contact's last message."},
	{RuleTemplate, "A template that does not exist in that language, is not APPROVED, or gets the wrong parameters."},
	{RuleOptIn, "A MARKETING template reachable on a path where the contact never opted in."},
	{RuleLimits, "A WhatsApp message limit exceeded (buttons, titles, body lengths, template names)."},
	{RuleParams, "A template parameter or media link WhatsApp refuses at send time (new lines, tabs, more than 4 spaces, too long, not an http(s) URL)."},
	{RuleUnreachable, "A step that no path reaches."},
	{RuleTrigger, "Two flows claim the same entry (a click-to-WhatsApp ad id), so one of them never starts from it."},
	{RulePhoneOnly, "A message WhatsApp delivers only to a phone number (an AUTHENTICATION template) reachable without a `contact.has_phone` guard: a contact known only by a business-scoped user ID gets error 131062."},
	{RuleForm, "A form whose Flow JSON cannot be read or lacks its screen, or an expression that reads a `reply.form` field the Flow JSON does not return (or compares it with a value of another type)."},
}

// Diagnostic is one finding, with the position it is about.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Rule     string
	Message  string
	Flow     string   // flow id, when known
	Step     string   // step id, when the finding is about a step
	Path     []string // the witness path of a window or opt-in finding
}

func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s [%s]", d.Pos, d.Severity, d.Message, d.Rule)
}

// Diagnostics is a list of findings.
type Diagnostics []Diagnostic

// Sort orders by file, line, column, then severity and message, so output is stable.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Pos != b.Pos {
			return a.Pos.Before(b.Pos)
		}
		if a.Severity != b.Severity {
			return a.Severity == SevError
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
}

// Count returns the number of errors and warnings.
func (ds Diagnostics) Count() (errors, warnings int) {
	for _, d := range ds {
		if d.Severity == SevError {
			errors++
		} else {
			warnings++
		}
	}
	return
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	e, _ := ds.Count()
	return e > 0
}
