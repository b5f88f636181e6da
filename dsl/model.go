package dsl

import (
	"regexp"
	"time"

	"github.com/robfig/cron/v3"
)

// Flow is one compiled flow file.
type Flow struct {
	ID          string
	Pos         Pos // the `flow:` value
	File        string
	Description string
	Language    string // default template language
	QuietHours  *QuietHours
	AssumeOptIn bool
	// Reenter lets a contact start the flow again while a run of it is active.
	Reenter bool
	Trigger Trigger
	Steps   []*Step

	Source []byte // the file's bytes, kept for snippets and flow versions
	Hash   string // sha256 of Source, hex

	stepIndex map[string]int
}

// Step returns the step with that id.
func (f *Flow) Step(id string) (*Step, bool) {
	i, ok := f.stepIndex[id]
	if !ok {
		return nil, false
	}
	return f.Steps[i], true
}

// StepIDs lists the step ids in order.
func (f *Flow) StepIDs() []string {
	ids := make([]string, len(f.Steps))
	for i, s := range f.Steps {
		ids[i] = s.ID
	}
	return ids
}

// After returns the step a run continues with when step s completes normally: its
// `next`, else the following step in the list; nil when the run ends there.
func (f *Flow) After(s *Step) *Step {
	if s.Next != "" {
		n, _ := f.Step(s.Next)
		return n
	}
	if s.Index+1 < len(f.Steps) {
		return f.Steps[s.Index+1]
	}
	return nil
}

// QuietHours is a daily span in which a run that wakes up from a `wait` is deferred
// to the span's end.
type QuietHours struct {
	Pos      Pos
	From, To ClockTime
	// Timezone is "contact" (the contact's own zone) or an IANA name.
	Timezone string
	Location *time.Location // nil when Timezone is "contact"
}

// Span is the longest deferral the quiet hours can add.
func (q *QuietHours) Span() time.Duration {
	d := q.To.Duration() - q.From.Duration()
	if d < 0 {
		d += Day
	}
	return d
}

// Contains reports whether a wall-clock time of day falls inside the quiet hours.
func (q *QuietHours) Contains(c ClockTime) bool {
	if q.From <= q.To {
		return c >= q.From && c < q.To
	}
	return c >= q.From || c < q.To
}

// TriggerKind names how a flow starts.
type TriggerKind string

const (
	TriggerClickToWhatsApp TriggerKind = "click_to_whatsapp"
	TriggerMessage         TriggerKind = "message"
	TriggerSchedule        TriggerKind = "schedule"
	TriggerEvent           TriggerKind = "event"
)

// TriggerKinds lists the kinds in the order the docs present them.
var TriggerKinds = []TriggerKind{TriggerClickToWhatsApp, TriggerMessage, TriggerSchedule, TriggerEvent}

// UserInitiated reports whether the contact's own message starts the flow, which
// means the window is open (E = 0) at entry.
func (k TriggerKind) UserInitiated() bool {
	return k == TriggerClickToWhatsApp || k == TriggerMessage
}

// Trigger is the flow's single entry.
type Trigger struct {
	Kind TriggerKind
	Pos  Pos

	// click_to_whatsapp
	Ads   []string       // referral source ids; empty = any ad or link
	AdPos []Pos          // where each of Ads is written
	Text  *regexp.Regexp // on the pre-filled message; nil = any

	// message
	Keywords []string // compared case-insensitively with the whole message, trimmed
	Pattern  *regexp.Regexp

	// schedule
	Cron     string
	Schedule cron.Schedule
	Audience *Expr // nil = every contact
	Timezone string
	Location *time.Location // schedule time zone (UTC when not given)

	// event
	Event string
}

// ActionKind names a step's action.
type ActionKind string

const (
	ActSend         ActionKind = "send"
	ActWait         ActionKind = "wait"
	ActWaitForReply ActionKind = "wait_for_reply"
	ActBranch       ActionKind = "branch"
	ActSet          ActionKind = "set"
	ActTag          ActionKind = "tag"
	ActUntag        ActionKind = "untag"
	ActOptIn        ActionKind = "opt_in"
	ActOptOut       ActionKind = "opt_out"
	ActStartFlow    ActionKind = "start_flow"
	ActGoto         ActionKind = "goto"
	ActEnd          ActionKind = "end"
	ActConvert      ActionKind = "convert"
	ActSplit        ActionKind = "split"
)

// ActionKinds lists every action key.
var ActionKinds = []ActionKind{ActSend, ActWait, ActWaitForReply, ActBranch, ActSet, ActTag,
	ActUntag, ActOptIn, ActOptOut, ActStartFlow, ActGoto, ActEnd, ActConvert, ActSplit}

// Step is one step of a flow. Exactly one of the action fields is set, per Kind.
type Step struct {
	ID    string
	Pos   Pos // the step's `id` value
	Index int // position in Flow.Steps
	Kind  ActionKind
	KPos  Pos // the action key

	Next    string // optional explicit successor
	NextPos Pos

	Send         *Send
	Wait         *Wait
	WaitForReply *WaitForReply
	Branch       []*BranchCase
	Set          []*Assignment
	Tags         []string // tag / untag
	Target       string   // goto / start_flow
	TargetPos    Pos
	EndReason    string          // end
	Convert      *Convert        // convert
	Split        []*SplitVariant // split
}

// Send is a message to the contact: exactly one of Text, Media, List, CTA,
// Form, LocationRequest, Template.
type Send struct {
	Pos             Pos
	Text            *Text     // text message, or the body of a button message
	Buttons         []*Button // reply buttons (with Text)
	Media           *Media
	List            *List
	CTA             *CTAURL
	Form            *Form
	LocationRequest *LocationRequest
	Template        *TemplateRef
	Fallback        *TemplateRef // sent instead when the window is closed at send time
}

// FreeForm reports whether the message is only allowed inside the 24-hour window.
func (s *Send) FreeForm() bool { return s.Template == nil }

// Describe names the message kind for people: "text", "text + 2 buttons",
// "image", "list", "template summer_reminder".
func (s *Send) Describe() string {
	switch {
	case s.Template != nil:
		return "template " + s.Template.Name
	case s.Media != nil:
		return s.Media.Kind
	case s.List != nil:
		return "list"
	case s.CTA != nil:
		return "cta_url"
	case s.Form != nil:
		return "form"
	case s.LocationRequest != nil:
		return "location request"
	case len(s.Buttons) == 1:
		return "text + 1 button"
	case len(s.Buttons) > 1:
		return "text + " + itoa(len(s.Buttons)) + " buttons"
	}
	return "text"
}

// MessageType is the Cloud API message type the send produces: text, interactive,
// image, video, document or template.
func (s *Send) MessageType() string {
	switch {
	case s.Template != nil:
		return "template"
	case s.Media != nil:
		return s.Media.Kind
	case s.List != nil, len(s.Buttons) > 0, s.CTA != nil, s.Form != nil, s.LocationRequest != nil:
		return "interactive"
	}
	return "text"
}

// Button is a reply button. ID is what the reply's payload carries; it defaults to
// the title.
type Button struct {
	Pos   Pos
	ID    string
	Title *Text
}

// Media is an image, video or document message.
type Media struct {
	Kind     string // image | video | document
	Pos      Pos
	Link     *Text
	Caption  *Text
	Filename *Text // documents only
}

// List is an interactive list message.
type List struct {
	Pos      Pos
	Body     *Text
	Button   *Text // the label of the button that opens the list
	Header   *Text
	Footer   *Text
	Sections []*ListSection
}

// ListSection groups list rows.
type ListSection struct {
	Pos   Pos
	Title *Text
	Rows  []*ListRow
}

// ListRow is one choice of a list; ID is what the reply's payload carries.
type ListRow struct {
	Pos         Pos
	ID          string
	Title       *Text
	Description *Text
}

// TemplateRef is a template send (or fallback) with its parameters.
type TemplateRef struct {
	Pos         Pos // the template name
	Name        string
	Language    string // as written on the step; "" = the flow's default
	LanguagePos Pos
	Params      []*Text       // positional {{1}}, {{2}}, …
	Named       []*NamedParam // named {{first_name}}, in source order
	ParamsPos   Pos           // the `params` key, for count errors
	Header      *Text         // media link, or the text header's parameter
	HeaderPos   Pos
	// Resolved is the catalog entry (name + effective language), set by the
	// template check when a catalog is loaded.
	Resolved *Template
}

// NamedParam is one named template parameter.
type NamedParam struct {
	Name  string
	Pos   Pos
	Value *Text
}

// Wait pauses the run: For, then (when At is set) until the next At in the contact's
// time zone.
type Wait struct {
	Pos Pos
	For time.Duration
	At  *ClockTime
}

// WaitForReply pauses until the contact writes. Timeout 0 waits indefinitely.
type WaitForReply struct {
	Pos          Pos
	Timeout      time.Duration
	OnTimeout    string // "" = the run ends as expired on timeout
	OnTimeoutPos Pos
}

// BranchCase is one case of a branch; If nil marks the default case (see
// IsDefault).
type BranchCase struct {
	Pos     Pos
	If      *Expr
	Goto    string
	GotoPos Pos
	// hasIf is set when the case has an `if:`, even one that did not compile
	// (If is then nil, and the case is still not the default).
	hasIf bool
}

// IsDefault reports whether the case is the default one, without `if:`.
func (c *BranchCase) IsDefault() bool { return c.If == nil && !c.hasIf }

// Assignment is one `set` entry. Contact is true for `contact.<field>` names.
type Assignment struct {
	Pos     Pos
	Name    string // without the "contact." prefix when Contact is true
	Contact bool
	Value   *Value
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
