package sim

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// Script is a conversation to simulate.
type Script struct {
	File      string
	Flows     []string // as written, relative to the script's folder
	Templates string
	Contact   Contact
	Start     time.Time
	Events    []Event
}

// Contact is the simulated user. A user with a WhatsApp username who hides
// their number has a UserID (BSUID) and no WaID: their webhooks carry no phone
// number, and funnel addresses them by the BSUID.
type Contact struct {
	WaID       string         `yaml:"wa_id"`
	UserID     string         `yaml:"user_id"`
	Username   string         `yaml:"username"`
	Name       string         `yaml:"name"`
	Timezone   string         `yaml:"timezone"`
	Tags       []string       `yaml:"tags"`
	OptedIn    bool           `yaml:"opted_in"`
	Attributes map[string]any `yaml:"attributes"`
}

// Event is one script line: exactly one of its fields is set.
type Event struct {
	Line    int
	Inbound *Inbound
	Advance time.Duration
	API     *APIEvent
	Expect  *Expect
}

// Inbound is a message from the contact.
type Inbound struct {
	Text        string
	Button      string // a template quick-reply tap, by title
	Interactive string // a reply button or list row tap, by title (or id)
	Referral    map[string]string
	Delay       time.Duration
	// SharePhone is the contact sharing their own number (the reply to a
	// REQUEST_CONTACT_INFO button: a contacts message).
	SharePhone string
	// Form is the contact completing the form of the last message (a flow
	// message): its fields, as the Flow's response_json carries them.
	Form map[string]any
	// Location is the contact sharing a location.
	Location *whatsapp.Location
}

// ID is the id the contact is known by: the BSUID when the script gives one,
// else the phone number.
func (c Contact) ID() string {
	if c.UserID != "" {
		return c.UserID
	}
	return c.WaID
}

// APIEvent starts `event` flows, like POST /v1/events.
type APIEvent struct {
	Name    string         `yaml:"name"`
	Payload map[string]any `yaml:"payload"`
}

// Expect checks what was produced since the previous expect.
type Expect struct {
	Line        int
	Sent        []Matcher
	NothingSent bool
	// Converted lists conversion events that must have been recorded (in this
	// order, others may come between them).
	Converted []string
	// CAPI lists Conversions API calls that must have been made, in order.
	CAPI []CAPIMatcher
}

// CAPIMatcher matches one conversion's Conversions API outcome.
type CAPIMatcher struct {
	Line   int
	Event  string `yaml:"event"`
	Status string `yaml:"status"` // sent (default), failed, expired
}

// CAPIStatuses are what a conversion's Conversions API event may have become.
var CAPIStatuses = []string{"sent", "failed", "expired"}

// Matcher matches one produced message.
type Matcher struct {
	Line         int
	TextContains string `yaml:"text_contains"`
	Template     string `yaml:"template"`
	Type         string `yaml:"type"`
	Status       string `yaml:"status"`
}

// MessageTypes are the types a matcher may expect: those the engine sends.
var MessageTypes = []string{"text", "interactive", "image", "video", "document", "template"}

// OutStatuses are what a sent message may have become on the timeline
// (delivered and read show as sent).
var OutStatuses = []string{"sent", "window_closed", "opted_out", "no_consent", "failed", "cancelled", "held"}

// ScriptError is a problem in a script, with its line.
type ScriptError struct {
	File string
	Line int
	Msg  string
}

func (e *ScriptError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// LoadScript reads and parses a script file.
func LoadScript(path string) (*Script, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseScript(path, data)
}

// ParseScript parses a script; errors carry the line they are about.
func ParseScript(file string, data []byte) (*Script, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ScriptError{file, 1, "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, &ScriptError{file, 1, "a script is a mapping with `contact`, `start` and `events`"}
	}
	s := &Script{File: file}
	errAt := func(n *yaml.Node, format string, args ...any) error {
		return &ScriptError{file, n.Line, fmt.Sprintf(format, args...)}
	}
	m := root.Content[0]
	var eventsNode *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch k.Value {
		case "flows":
			if v.Kind == yaml.ScalarNode {
				s.Flows = []string{v.Value}
			} else if err := strictDecode(v, &s.Flows); err != nil {
				return nil, errAt(v, "`flows`: %v", err)
			}
		case "templates":
			s.Templates = v.Value
		case "contact":
			if err := strictDecode(v, &s.Contact); err != nil {
				return nil, errAt(v, "`contact`: %v", err)
			}
			if tz := s.Contact.Timezone; tz != "" {
				if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
					return nil, errAt(v, "`contact`: unknown time zone %q: use an IANA name like Europe/Lisbon", tz)
				}
			}
			if id := s.Contact.WaID; id != "" && strings.Trim(id, "0123456789") != "" {
				return nil, errAt(v, "`contact`: wa_id %q must be digits only, as WhatsApp sends it: the number in international format without + or spaces", id)
			}
		case "start":
			t, err := time.Parse(time.RFC3339, v.Value)
			if err != nil {
				return nil, errAt(v, "`start` must be an RFC 3339 time like 2026-07-01T10:00:00Z")
			}
			s.Start = t
		case "events":
			eventsNode = v
		default:
			return nil, errAt(k, "unknown key `%s` (valid: flows, templates, contact, start, events)", k.Value)
		}
	}
	if s.Contact.WaID == "" && s.Contact.UserID == "" {
		s.Contact.WaID = "15550001111"
	}
	if s.Contact.UserID != "" && !whatsapp.IsBSUID(s.Contact.UserID) {
		return nil, &ScriptError{file, 1, "`contact.user_id` must be a business-scoped user ID like US.13491208655302741918"}
	}
	if s.Start.IsZero() {
		s.Start = time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	}
	if eventsNode == nil || eventsNode.Kind != yaml.SequenceNode {
		return nil, errAt(m, "a script needs `events`: a list of inbound, advance, event and expect")
	}
	for _, n := range eventsNode.Content {
		ev, err := parseEvent(file, n)
		if err != nil {
			return nil, err
		}
		s.Events = append(s.Events, ev)
	}
	return s, nil
}

func strictDecode(n *yaml.Node, v any) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		return err
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	return dec.Decode(v)
}

func duration(n *yaml.Node) (time.Duration, error) {
	if d, err := dsl.ParseDuration(n.Value); err == nil {
		return d, nil
	}
	return time.ParseDuration(n.Value)
}

func parseEvent(file string, n *yaml.Node) (Event, error) {
	ev := Event{Line: n.Line}
	errAt := func(n *yaml.Node, format string, args ...any) error {
		return &ScriptError{file, n.Line, fmt.Sprintf(format, args...)}
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return ev, errAt(n, "each event is one of `inbound`, `advance`, `event`, `expect`")
	}
	k, v := n.Content[0], n.Content[1]
	switch k.Value {
	case "inbound":
		in := &Inbound{}
		if v.Kind == yaml.ScalarNode {
			in.Text = v.Value
		} else {
			for i := 0; i+1 < len(v.Content); i += 2 {
				ik, iv := v.Content[i], v.Content[i+1]
				switch ik.Value {
				case "text":
					in.Text = iv.Value
				case "button":
					in.Button = iv.Value
				case "interactive":
					in.Interactive = iv.Value
					if iv.Kind == yaml.MappingNode {
						var x struct {
							ID    string `yaml:"id"`
							Title string `yaml:"title"`
						}
						if err := strictDecode(iv, &x); err != nil {
							return ev, errAt(iv, "`interactive`: %v", err)
						}
						in.Interactive = x.Title
						if in.Interactive == "" {
							in.Interactive = x.ID
						}
					}
				case "referral":
					if err := strictDecode(iv, &in.Referral); err != nil {
						return ev, errAt(iv, "`referral`: %v", err)
					}
				case "delay":
					d, err := duration(iv)
					if err != nil {
						return ev, errAt(iv, "`delay`: %v", err)
					}
					in.Delay = d
				case "share_phone":
					if !whatsapp.ValidWaID(iv.Value) {
						return ev, errAt(iv, "`share_phone` is the contact's number, digits only")
					}
					in.SharePhone = iv.Value
				case "form":
					if err := strictDecode(iv, &in.Form); err != nil || in.Form == nil {
						return ev, errAt(iv, "`form` is the completed form's fields, a mapping like {name: Ana, size: M}")
					}
				case "location":
					var l struct {
						Latitude  *float64 `yaml:"latitude"`
						Longitude *float64 `yaml:"longitude"`
						Name      string   `yaml:"name"`
						Address   string   `yaml:"address"`
						URL       string   `yaml:"url"`
					}
					if err := strictDecode(iv, &l); err != nil || l.Latitude == nil || l.Longitude == nil ||
						*l.Latitude < -90 || *l.Latitude > 90 || *l.Longitude < -180 || *l.Longitude > 180 {
						return ev, errAt(iv, "`location` needs `latitude` (-90 to 90) and `longitude` (-180 to 180), and may give `name`, `address`, `url`")
					}
					in.Location = &whatsapp.Location{Latitude: *l.Latitude, Longitude: *l.Longitude, Name: l.Name, Address: l.Address, URL: l.URL}
				default:
					return ev, errAt(ik, "unknown key `%s` in inbound (valid: text, button, interactive, form, location, referral, delay, share_phone)", ik.Value)
				}
			}
		}
		if in.Text == "" && in.Button == "" && in.Interactive == "" && in.Referral == nil && in.SharePhone == "" && in.Form == nil && in.Location == nil {
			return ev, errAt(v, "an inbound needs `text`, `button`, `interactive`, `form`, `location` or `share_phone`")
		}
		ev.Inbound = in
	case "advance":
		d, err := duration(v)
		if err != nil || d <= 0 {
			return ev, errAt(v, "`advance` needs a duration like 4h or 3d")
		}
		ev.Advance = d
	case "event":
		ev.API = &APIEvent{}
		if err := strictDecode(v, ev.API); err != nil || ev.API.Name == "" {
			return ev, errAt(v, "`event` needs `name` (and an optional `payload`)")
		}
	case "expect":
		x := &Expect{Line: n.Line}
		for i := 0; i+1 < len(v.Content); i += 2 {
			ik, iv := v.Content[i], v.Content[i+1]
			switch ik.Value {
			case "nothing_sent":
				x.NothingSent = iv.Value == "true"
			case "sent":
				for _, mn := range iv.Content {
					var m Matcher
					if err := strictDecode(mn, &m); err != nil {
						return ev, errAt(mn, "matcher: %v (valid: text_contains, template, type, status)", err)
					}
					if m.Type != "" && !slices.Contains(MessageTypes, m.Type) {
						return ev, errAt(mn, "matcher: unknown type %q%s (types: %s)", m.Type, dsl.DidYouMean(m.Type, MessageTypes), strings.Join(MessageTypes, ", "))
					}
					if m.Status != "" && !slices.Contains(OutStatuses, m.Status) {
						return ev, errAt(mn, "matcher: unknown status %q%s (statuses: %s)", m.Status, dsl.DidYouMean(m.Status, OutStatuses), strings.Join(OutStatuses, ", "))
					}
					m.Line = mn.Line
					x.Sent = append(x.Sent, m)
				}
			case "converted":
				names := []string{iv.Value}
				if iv.Kind != yaml.ScalarNode {
					names = nil
					if err := strictDecode(iv, &names); err != nil {
						return ev, errAt(iv, "`converted`: an event name or a list of them: %v", err)
					}
				}
				for _, n := range names {
					if !slices.Contains(dsl.ConversionEvents, n) {
						return ev, errAt(iv, "`converted`: unknown event %q%s (events: %s)", n, dsl.DidYouMean(n, dsl.ConversionEvents), strings.Join(dsl.ConversionEvents, ", "))
					}
				}
				x.Converted = names
			case "capi":
				for _, mn := range iv.Content {
					var m CAPIMatcher
					if err := strictDecode(mn, &m); err != nil {
						return ev, errAt(mn, "capi matcher: %v (valid: event, status)", err)
					}
					if m.Event != "" && !slices.Contains(dsl.ConversionEvents, m.Event) {
						return ev, errAt(mn, "capi matcher: unknown event %q%s (events: %s)", m.Event, dsl.DidYouMean(m.Event, dsl.ConversionEvents), strings.Join(dsl.ConversionEvents, ", "))
					}
					if m.Status != "" && !slices.Contains(CAPIStatuses, m.Status) {
						return ev, errAt(mn, "capi matcher: unknown status %q%s (statuses: %s)", m.Status, dsl.DidYouMean(m.Status, CAPIStatuses), strings.Join(CAPIStatuses, ", "))
					}
					m.Line = mn.Line
					x.CAPI = append(x.CAPI, m)
				}
				if iv.Kind != yaml.SequenceNode {
					return ev, errAt(iv, "`capi` is a list like [{event: LeadSubmitted}]")
				}
			default:
				return ev, errAt(ik, "unknown key `%s` in expect (valid: sent, nothing_sent, converted, capi)", ik.Value)
			}
		}
		ev.Expect = x
	default:
		return ev, errAt(k, "unknown event `%s` (valid: inbound, advance, event, expect)", k.Value)
	}
	return ev, nil
}
