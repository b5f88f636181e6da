package whatsapp

import (
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Message types accepted by the Graph API that funnel sends.
const (
	TypeText        = "text"
	TypeInteractive = "interactive"
	TypeImage       = "image"
	TypeVideo       = "video"
	TypeDocument    = "document"
	TypeTemplate    = "template"
)

// Interactive message kinds.
const (
	InteractiveButton = "button"
	InteractiveList   = "list"
)

// Limits Meta enforces on outbound messages (docs/WHATSAPP.md, "Limits and pacing").
// Validate checks them so a malformed message fails before it costs an API call.
const (
	MaxTextBody             = 4096
	MaxInteractiveBody      = 1024
	MaxInteractiveFooter    = 60
	MaxInteractiveHeader    = 60
	MaxReplyButtons         = 3
	MaxButtonTitle          = 20
	MaxButtonID             = 256
	MaxListButton           = 20
	MaxListSections         = 10
	MaxListRows             = 10
	MaxSectionTitle         = 24
	MaxRowTitle             = 24
	MaxRowDescription       = 72
	MaxRowID                = 200
	MaxCaption              = 1024
	MaxBizOpaqueCallbackLen = 512
	// MaxTemplateBodyParam and MaxTemplateHeaderParam bound one template text
	// parameter: a template's body holds 1,024 characters, a text header 60.
	MaxTemplateBodyParam   = 1024
	MaxTemplateHeaderParam = 60
)

// ErrInvalidMessage is wrapped by every Validate error, so callers (and Classify)
// can tell a message that can never be sent from a transient failure.
var ErrInvalidMessage = errors.New("whatsapp: invalid message")

// Message is the body of POST /{phone-number-id}/messages. Field names and
// omitempty choices follow Meta's examples so the marshalled JSON matches them.
type Message struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type,omitempty"`
	// To is the user's phone number; Recipient a BSUID or parent BSUID, for
	// users whose number the business does not know. Meta takes To when both
	// are set; funnel sets exactly one.
	To        string `json:"to,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	Type      string `json:"type"`
	// Context makes the message a reply to an earlier message (quoted in the chat).
	Context     *ReplyContext `json:"context,omitempty"`
	Text        *Text         `json:"text,omitempty"`
	Interactive *Interactive  `json:"interactive,omitempty"`
	Image       *Media        `json:"image,omitempty"`
	Video       *Media        `json:"video,omitempty"`
	Document    *Media        `json:"document,omitempty"`
	Template    *Template     `json:"template,omitempty"`
	// BizOpaqueCallbackData is echoed back in status webhooks: funnel puts the
	// outbox row id here to tie statuses to what it sent (≤ 512 bytes).
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data,omitempty"`
}

// ReplyContext quotes an earlier message.
type ReplyContext struct {
	MessageID string `json:"message_id"`
}

// Text is a free-form text body. PreviewURL is always emitted, as in Meta's
// example, because false is meaningful (no link preview).
type Text struct {
	Body       string `json:"body"`
	PreviewURL bool   `json:"preview_url"`
}

// Interactive is a reply-button or list message.
type Interactive struct {
	Type   string             `json:"type"`
	Header *InteractiveHeader `json:"header,omitempty"`
	Body   *InteractiveText   `json:"body,omitempty"`
	Footer *InteractiveText   `json:"footer,omitempty"`
	Action Action             `json:"action"`
}

// InteractiveHeader is the optional header: text, or media for button messages.
type InteractiveHeader struct {
	Type     string `json:"type"` // text | image | video | document
	Text     string `json:"text,omitempty"`
	Image    *Media `json:"image,omitempty"`
	Video    *Media `json:"video,omitempty"`
	Document *Media `json:"document,omitempty"`
}

// InteractiveText is the {"text": "…"} object used for body and footer.
type InteractiveText struct {
	Text string `json:"text"`
}

// Action holds reply buttons (type button) or the list button and sections
// (type list).
type Action struct {
	Buttons  []Button  `json:"buttons,omitempty"`
	Button   string    `json:"button,omitempty"`
	Sections []Section `json:"sections,omitempty"`
	// Name and Parameters are the action of a cta_url ("cta_url"), flow ("flow")
	// or location request ("send_location") message (rich.go).
	Name       string            `json:"name,omitempty"`
	Parameters *ActionParameters `json:"parameters,omitempty"`
}

// Button is one reply button; Type is always "reply".
type Button struct {
	Type  string      `json:"type"`
	Reply ButtonReply `json:"reply"`
}

// ButtonReply is a reply button's id (returned in button_reply.id when tapped)
// and its title.
type ButtonReply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Section groups list rows.
type Section struct {
	Title string `json:"title,omitempty"`
	Rows  []Row  `json:"rows"`
}

// Row is one list row; its ID comes back in list_reply.id.
type Row struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// Media references an uploaded media ID or a public link.
type Media struct {
	ID       string `json:"id,omitempty"`
	Link     string `json:"link,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// Template is a pre-approved template message: the only kind allowed outside
// the 24 h customer service window.
type Template struct {
	Name       string      `json:"name"`
	Language   Language    `json:"language"`
	Components []Component `json:"components,omitempty"`
}

// Language selects the template translation.
type Language struct {
	Policy string `json:"policy,omitempty"`
	Code   string `json:"code"`
}

// Component fills a template component (header, body, button).
type Component struct {
	Type       string      `json:"type"`
	SubType    string      `json:"sub_type,omitempty"`
	Index      string      `json:"index,omitempty"`
	Parameters []Parameter `json:"parameters,omitempty"`
}

// Parameter is one template parameter. ParameterName is set for
// named-parameter templates.
type Parameter struct {
	Type          string `json:"type"`
	ParameterName string `json:"parameter_name,omitempty"`
	Text          string `json:"text,omitempty"`
	Payload       string `json:"payload,omitempty"`
	Image         *Media `json:"image,omitempty"`
	Video         *Media `json:"video,omitempty"`
	Document      *Media `json:"document,omitempty"`
}

// newMessage addresses a message to `to`: a phone number goes in "to", a
// BSUID in "recipient".
func newMessage(to, typ string) *Message {
	m := &Message{MessagingProduct: "whatsapp", RecipientType: "individual", Type: typ}
	m.SetAddress(to)
	return m
}

// SetAddress addresses the message to a phone number ("to") or a BSUID
// ("recipient"), clearing the other.
func (m *Message) SetAddress(id string) {
	if IsBSUID(id) {
		m.To, m.Recipient = "", id
	} else {
		m.To, m.Recipient = id, ""
	}
}

// Address is who the message goes to: To, else Recipient.
func (m *Message) Address() string {
	if m.To != "" {
		return m.To
	}
	return m.Recipient
}

// NewText builds a free-form text message.
func NewText(to, body string) *Message {
	m := newMessage(to, TypeText)
	m.Text = &Text{Body: body}
	return m
}

// NewButtons builds an interactive reply-button message (up to 3 buttons).
func NewButtons(to, body string, replies ...ButtonReply) *Message {
	m := newMessage(to, TypeInteractive)
	bs := make([]Button, len(replies))
	for i, r := range replies {
		bs[i] = Button{Type: "reply", Reply: r}
	}
	m.Interactive = &Interactive{Type: InteractiveButton, Body: &InteractiveText{Text: body}, Action: Action{Buttons: bs}}
	return m
}

// NewList builds an interactive list message; button is the label of the
// button that opens the list.
func NewList(to, body, button string, sections ...Section) *Message {
	m := newMessage(to, TypeInteractive)
	m.Interactive = &Interactive{Type: InteractiveList, Body: &InteractiveText{Text: body}, Action: Action{Button: button, Sections: sections}}
	return m
}

// NewImage builds an image message.
func NewImage(to string, media Media) *Message {
	m := newMessage(to, TypeImage)
	m.Image = &media
	return m
}

// NewVideo builds a video message.
func NewVideo(to string, media Media) *Message {
	m := newMessage(to, TypeVideo)
	m.Video = &media
	return m
}

// NewDocument builds a document message.
func NewDocument(to string, media Media) *Message {
	m := newMessage(to, TypeDocument)
	m.Document = &media
	return m
}

// NewTemplate builds a template message.
func NewTemplate(to, name, language string, components ...Component) *Message {
	m := newMessage(to, TypeTemplate)
	m.Template = &Template{Name: name, Language: Language{Code: language}, Components: components}
	return m
}

// BodyParams is the body component for a positional template ({{1}}, {{2}}, …).
func BodyParams(values ...string) Component {
	ps := make([]Parameter, len(values))
	for i, v := range values {
		ps[i] = Parameter{Type: "text", Text: v}
	}
	return Component{Type: "body", Parameters: ps}
}

// NamedBodyParam is one named template parameter ({{first_name}}).
type NamedBodyParam struct{ Name, Value string }

// NamedBodyParams is the body component for a named-parameter template.
func NamedBodyParams(params ...NamedBodyParam) Component {
	ps := make([]Parameter, len(params))
	for i, p := range params {
		ps[i] = Parameter{Type: "text", ParameterName: p.Name, Text: p.Value}
	}
	return Component{Type: "body", Parameters: ps}
}

// QuickReplyPayload is the component setting the payload returned when the
// template's quick-reply button at index is tapped.
func QuickReplyPayload(index int, payload string) Component {
	return Component{Type: "button", SubType: "quick_reply", Index: fmt.Sprint(index),
		Parameters: []Parameter{{Type: "payload", Payload: payload}}}
}

// templateName is Meta's rule for template names.
var templateName = regexp.MustCompile(`^[a-z0-9_]+$`)

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidMessage, field, fmt.Sprintf(format, args...))
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// Validate checks the shape Meta would reject synchronously (missing fields,
// Meta's length limits, button counts, template name syntax). It does not
// check the window, opt-in or template approval: those depend on state.
// Errors wrap ErrInvalidMessage.
func (m *Message) Validate() error {
	if m == nil {
		return invalid("message", "nil")
	}
	if m.MessagingProduct != "whatsapp" {
		return invalid("messaging_product", "must be %q, got %q", "whatsapp", m.MessagingProduct)
	}
	if m.RecipientType != "" && m.RecipientType != "individual" {
		return invalid("recipient_type", "must be %q, got %q", "individual", m.RecipientType)
	}
	if m.To == "" && m.Recipient == "" {
		return invalid("to", "required (or recipient)")
	}
	if m.Recipient != "" && !IsBSUID(m.Recipient) {
		return invalid("recipient", "not a business-scoped user ID: %q", m.Recipient)
	}
	if len(m.BizOpaqueCallbackData) > MaxBizOpaqueCallbackLen {
		return invalid("biz_opaque_callback_data", "%d bytes, limit %d", len(m.BizOpaqueCallbackData), MaxBizOpaqueCallbackLen)
	}
	if m.Context != nil && m.Context.MessageID == "" {
		return invalid("context.message_id", "required")
	}
	bodies := 0
	for _, set := range []bool{m.Text != nil, m.Interactive != nil, m.Image != nil, m.Video != nil, m.Document != nil, m.Template != nil} {
		if set {
			bodies++
		}
	}
	if bodies > 1 {
		return invalid("type", "exactly one of text, interactive, image, video, document, template must be set")
	}
	switch m.Type {
	case TypeText:
		if m.Text == nil {
			return invalid("text", "required for type text")
		}
		if m.Text.Body == "" {
			return invalid("text.body", "required")
		}
		if n := runes(m.Text.Body); n > MaxTextBody {
			return invalid("text.body", "%d characters, limit %d", n, MaxTextBody)
		}
	case TypeInteractive:
		if m.Interactive == nil {
			return invalid("interactive", "required for type interactive")
		}
		return m.Interactive.validate()
	case TypeImage:
		return validateMedia("image", m.Image, false)
	case TypeVideo:
		return validateMedia("video", m.Video, false)
	case TypeDocument:
		return validateMedia("document", m.Document, true)
	case TypeTemplate:
		if m.Template == nil {
			return invalid("template", "required for type template")
		}
		return m.Template.validate()
	case "":
		return invalid("type", "required")
	default:
		return invalid("type", "unsupported %q", m.Type)
	}
	return nil
}

func validateMedia(field string, md *Media, filename bool) error {
	if md == nil {
		return invalid(field, "required for type %s", field)
	}
	if md.ID == "" && md.Link == "" {
		return invalid(field, "id or link required")
	}
	if md.ID != "" && md.Link != "" {
		return invalid(field, "id and link are exclusive")
	}
	if n := runes(md.Caption); n > MaxCaption {
		return invalid(field+".caption", "%d characters, limit %d", n, MaxCaption)
	}
	if md.Filename != "" && !filename {
		return invalid(field+".filename", "only documents have a filename")
	}
	if md.Link != "" {
		if err := CheckMediaLink(md.Link); err != nil {
			return invalid(field+".link", "%v", err)
		}
	}
	return nil
}

func (in *Interactive) validate() error {
	if in.Body == nil || in.Body.Text == "" {
		return invalid("interactive.body.text", "required")
	}
	if n := runes(in.Body.Text); n > MaxInteractiveBody {
		return invalid("interactive.body.text", "%d characters, limit %d", n, MaxInteractiveBody)
	}
	if in.Footer != nil {
		if n := runes(in.Footer.Text); n > MaxInteractiveFooter {
			return invalid("interactive.footer.text", "%d characters, limit %d", n, MaxInteractiveFooter)
		}
	}
	if h := in.Header; h != nil {
		switch h.Type {
		case "text":
			if h.Text == "" {
				return invalid("interactive.header.text", "required")
			}
			if n := runes(h.Text); n > MaxInteractiveHeader {
				return invalid("interactive.header.text", "%d characters, limit %d", n, MaxInteractiveHeader)
			}
		case "image", "video", "document":
			if in.Type == InteractiveList {
				return invalid("interactive.header.type", "list messages take only a text header")
			}
			md := map[string]*Media{"image": h.Image, "video": h.Video, "document": h.Document}[h.Type]
			if err := validateMedia("interactive.header."+h.Type, md, h.Type == "document"); err != nil {
				return err
			}
		default:
			return invalid("interactive.header.type", "unsupported %q", h.Type)
		}
	}
	a := in.Action
	switch in.Type {
	case InteractiveButton:
		if len(a.Buttons) == 0 {
			return invalid("interactive.action.buttons", "at least one button required")
		}
		if len(a.Buttons) > MaxReplyButtons {
			return invalid("interactive.action.buttons", "%d buttons, limit %d", len(a.Buttons), MaxReplyButtons)
		}
		if a.Button != "" || len(a.Sections) > 0 {
			return invalid("interactive.action", "button messages take no list button or sections")
		}
		ids, titles := map[string]bool{}, map[string]bool{}
		for i, b := range a.Buttons {
			f := fmt.Sprintf("interactive.action.buttons[%d]", i)
			if b.Type != "reply" {
				return invalid(f+".type", "must be %q, got %q", "reply", b.Type)
			}
			if b.Reply.ID == "" {
				return invalid(f+".reply.id", "required")
			}
			if n := runes(b.Reply.ID); n > MaxButtonID {
				return invalid(f+".reply.id", "%d characters, limit %d", n, MaxButtonID)
			}
			if b.Reply.Title == "" {
				return invalid(f+".reply.title", "required")
			}
			if n := runes(b.Reply.Title); n > MaxButtonTitle {
				return invalid(f+".reply.title", "%q is %d characters, limit %d", b.Reply.Title, n, MaxButtonTitle)
			}
			if ids[b.Reply.ID] {
				return invalid(f+".reply.id", "duplicate %q", b.Reply.ID)
			}
			if titles[b.Reply.Title] {
				return invalid(f+".reply.title", "duplicate %q", b.Reply.Title)
			}
			ids[b.Reply.ID], titles[b.Reply.Title] = true, true
		}
	case InteractiveList:
		if len(a.Buttons) > 0 {
			return invalid("interactive.action.buttons", "list messages take no reply buttons")
		}
		if a.Button == "" {
			return invalid("interactive.action.button", "required")
		}
		if n := runes(a.Button); n > MaxListButton {
			return invalid("interactive.action.button", "%d characters, limit %d", n, MaxListButton)
		}
		if len(a.Sections) == 0 {
			return invalid("interactive.action.sections", "at least one section required")
		}
		if len(a.Sections) > MaxListSections {
			return invalid("interactive.action.sections", "%d sections, limit %d", len(a.Sections), MaxListSections)
		}
		rows := 0
		ids := map[string]bool{}
		for i, s := range a.Sections {
			f := fmt.Sprintf("interactive.action.sections[%d]", i)
			if len(a.Sections) > 1 && s.Title == "" {
				return invalid(f+".title", "required when there are several sections")
			}
			if n := runes(s.Title); n > MaxSectionTitle {
				return invalid(f+".title", "%d characters, limit %d", n, MaxSectionTitle)
			}
			if len(s.Rows) == 0 {
				return invalid(f+".rows", "at least one row required")
			}
			for j, r := range s.Rows {
				rf := fmt.Sprintf("%s.rows[%d]", f, j)
				if r.ID == "" {
					return invalid(rf+".id", "required")
				}
				if n := runes(r.ID); n > MaxRowID {
					return invalid(rf+".id", "%d characters, limit %d", n, MaxRowID)
				}
				if ids[r.ID] {
					return invalid(rf+".id", "duplicate %q", r.ID)
				}
				ids[r.ID] = true
				if r.Title == "" {
					return invalid(rf+".title", "required")
				}
				if n := runes(r.Title); n > MaxRowTitle {
					return invalid(rf+".title", "%d characters, limit %d", n, MaxRowTitle)
				}
				if n := runes(r.Description); n > MaxRowDescription {
					return invalid(rf+".description", "%d characters, limit %d", n, MaxRowDescription)
				}
			}
			rows += len(s.Rows)
		}
		if rows > MaxListRows {
			return invalid("interactive.action.sections", "%d rows in total, limit %d", rows, MaxListRows)
		}
	case InteractiveCTAURL, InteractiveFlow, InteractiveLocationRequest:
		return in.validateRich()
	case "":
		return invalid("interactive.type", "required")
	default:
		return invalid("interactive.type", "unsupported %q", in.Type)
	}
	return nil
}

func (t *Template) validate() error {
	if t.Name == "" {
		return invalid("template.name", "required")
	}
	if !templateName.MatchString(t.Name) {
		return invalid("template.name", "%q must match ^[a-z0-9_]+$", t.Name)
	}
	if t.Language.Code == "" {
		return invalid("template.language.code", "required")
	}
	for i, c := range t.Components {
		f := fmt.Sprintf("template.components[%d]", i)
		switch c.Type {
		case "header", "body":
		case "button":
			if c.SubType == "" {
				return invalid(f+".sub_type", "required for button components")
			}
			if c.Index == "" {
				return invalid(f+".index", "required for button components")
			}
		case "":
			return invalid(f+".type", "required")
		default:
			return invalid(f+".type", "unsupported %q", c.Type)
		}
		for j, p := range c.Parameters {
			pf := fmt.Sprintf("%s.parameters[%d]", f, j)
			switch p.Type {
			case "text":
				// Meta rejects empty text parameters; an empty interpolation
				// is a bug upstream, better caught before the call.
				if p.Text == "" {
					return invalid(pf+".text", "required")
				}
				if err := CheckTemplateParam(p.Text, c.Type == "header"); err != nil {
					return invalid(pf+".text", "%v", err)
				}
			case "payload":
				if p.Payload == "" {
					return invalid(pf+".payload", "required")
				}
			case "image", "video", "document":
				md := map[string]*Media{"image": p.Image, "video": p.Video, "document": p.Document}[p.Type]
				if err := validateMedia(pf+"."+p.Type, md, p.Type == "document"); err != nil {
					return err
				}
			case "":
				return invalid(pf+".type", "required")
			default:
				// currency, date_time, coupon_code, …: Meta validates them.
			}
		}
	}
	return nil
}
