package dsl

import (
	"reflect"
	"sort"
	"strings"
	"time"
)

// Env is the typed environment every expression is compiled against and run with.
// The `expr` tags are the names flow authors write.
type Env struct {
	Contact ContactEnv     `expr:"contact"`
	Entry   EntryEnv       `expr:"entry"`
	Reply   ReplyEnv       `expr:"reply"`
	Vars    map[string]any `expr:"vars"`
	Event   map[string]any `expr:"event"`
	Run     RunEnv         `expr:"run"`
	Now     time.Time      `expr:"now"`
}

// ContactEnv is the contact as expressions see it.
//
// WaID is the phone number, empty for a contact known only by a business-scoped
// user ID (a WhatsApp user with a username who hides their number); UserID is
// that BSUID, Username the WhatsApp username, HasPhone whether the number is known.
type ContactEnv struct {
	WaID       string         `expr:"wa_id" json:"wa_id,omitempty"`
	UserID     string         `expr:"user_id" json:"user_id,omitempty"`
	Username   string         `expr:"username" json:"username,omitempty"`
	HasPhone   bool           `expr:"has_phone" json:"has_phone,omitempty"`
	Name       string         `expr:"name" json:"name,omitempty"`
	Tags       []string       `expr:"tags" json:"tags,omitempty"`
	Attributes map[string]any `expr:"attributes" json:"attributes,omitempty"`
	OptedIn    bool           `expr:"opted_in" json:"opted_in,omitempty"`
	Timezone   string         `expr:"timezone" json:"timezone,omitempty"`
}

// EntryEnv is the click-to-WhatsApp referral of the message that started the run,
// and that message's text. Every field may be empty: ads differ in what they send.
type EntryEnv struct {
	SourceID   string `expr:"source_id" json:"source_id,omitempty"`
	SourceURL  string `expr:"source_url" json:"source_url,omitempty"`
	SourceType string `expr:"source_type" json:"source_type,omitempty"`
	Headline   string `expr:"headline" json:"headline,omitempty"`
	Body       string `expr:"body" json:"body,omitempty"`
	MediaType  string `expr:"media_type" json:"media_type,omitempty"`
	CtwaClid   string `expr:"ctwa_clid" json:"ctwa_clid,omitempty"`
	Text       string `expr:"text" json:"text,omitempty"`
}

// RunEnv is the run itself. Variants maps each `split` step the run has passed
// to the variant it was assigned (`run.variants["pick-intro"]`, or
// `run.variants.pick_intro` when the step id has no `-`); a split not passed
// yet is absent ("").
type RunEnv struct {
	Variants map[string]string `expr:"variants" json:"variants,omitempty"`
}

// ReplyEnv is the contact's latest reply. Text is the typed text, or the title of a
// tapped button or list row; Button is the title of a tapped button; Payload is a
// quick-reply payload or an interactive reply id; Type is the Cloud API message type.
//
// Form holds a completed form's fields (Type "form"): the Flow's response_json
// as sent, flow_token included. Location is a shared location (Type
// "location").
type ReplyEnv struct {
	Text     string         `expr:"text" json:"text,omitempty"`
	Button   string         `expr:"button" json:"button,omitempty"`
	Payload  string         `expr:"payload" json:"payload,omitempty"`
	Type     string         `expr:"type" json:"type,omitempty"`
	Form     map[string]any `expr:"form" json:"form,omitempty"`
	Location LocationEnv    `expr:"location" json:"location,omitzero"`
}

// LocationEnv is a location the contact shared: coordinates, and the place's
// name and address when the contact picked a place.
type LocationEnv struct {
	Latitude  float64 `expr:"latitude" json:"latitude,omitempty"`
	Longitude float64 `expr:"longitude" json:"longitude,omitempty"`
	Name      string  `expr:"name" json:"name,omitempty"`
	Address   string  `expr:"address" json:"address,omitempty"`
	URL       string  `expr:"url" json:"url,omitempty"`
}

// envFields maps each environment name to its field names, for error messages and
// suggestions; built once from the struct tags so it cannot drift.
var envFields = func() map[string][]string {
	m := map[string][]string{}
	root := reflect.TypeOf(Env{})
	for i := 0; i < root.NumField(); i++ {
		f := root.Field(i)
		name := f.Tag.Get("expr")
		m[""] = append(m[""], name)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			for j := 0; j < f.Type.NumField(); j++ {
				sub := f.Type.Field(j)
				m[name] = append(m[name], sub.Tag.Get("expr"))
				if sub.Type.Kind() == reflect.Struct {
					inner := name + "." + sub.Tag.Get("expr")
					for k := 0; k < sub.Type.NumField(); k++ {
						m[inner] = append(m[inner], sub.Type.Field(k).Tag.Get("expr"))
					}
				}
			}
		}
	}
	return m
}()

// envTypeNames maps the Go type names that expr-lang prints to environment names.
var envTypeNames = map[string]string{
	"dsl.ContactEnv":  "contact",
	"dsl.EntryEnv":    "entry",
	"dsl.ReplyEnv":    "reply",
	"dsl.LocationEnv": "reply.location",
	"dsl.RunEnv":      "run",
}

// EnvNames lists the top-level names of the environment.
func EnvNames() []string { return append([]string(nil), envFields[""]...) }

// EnvFields lists the fields of one top-level name (nil for maps and now).
func EnvFields(name string) []string {
	f := append([]string(nil), envFields[name]...)
	sort.Strings(f)
	return f
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "`" + x + "`"
	}
	return strings.Join(q, ", ")
}
