package whatsapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Account-level webhook fields: changes to the business's templates and phone
// numbers rather than to one conversation (docs/WHATSAPP.md, "Account
// webhooks"). Their values carry no metadata.phone_number_id and no contact.
const (
	FieldTemplateStatus   = "message_template_status_update"
	FieldTemplateCategory = "template_category_update"
	FieldTemplateQuality  = "message_template_quality_update"
	FieldPhoneQuality     = "phone_number_quality_update"
)

// AccountUpdate is one account-level change of a webhook: exactly one of
// Template and Phone is set. Time is the entry's `time` (when Meta triggered
// the webhook), the order in which updates of one template apply.
type AccountUpdate struct {
	Field    string              `json:"field"`
	WABAID   string              `json:"waba_id,omitempty"`
	Time     time.Time           `json:"time"`
	Template *TemplateUpdate     `json:"template,omitempty"`
	Phone    *PhoneQualityUpdate `json:"phone,omitempty"`
}

// TemplateUpdate is the value of a message_template_status_update,
// template_category_update or message_template_quality_update change, as
// Meta's webhook references give them: the template is named by id, name and
// language in all three.
type TemplateUpdate struct {
	ID       FlexString `json:"message_template_id,omitempty"`
	Name     string     `json:"message_template_name"`
	Language string     `json:"message_template_language"`

	// message_template_status_update: Event is the new status or what
	// happened (APPROVED, REJECTED, PAUSED, DISABLED, FLAGGED, REINSTATED,
	// PENDING_DELETION, ARCHIVED, UNARCHIVED, LOCKED, UNLOCKED, …), Reason
	// Meta's reason ("NONE" on approval), DisableInfo the date a DISABLED
	// (or FLAGGED) template is or will be disabled.
	Event       string       `json:"event,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	Category    string       `json:"message_template_category,omitempty"`
	DisableInfo *DisableInfo `json:"disable_info,omitempty"`

	// template_category_update: a completed change has PreviousCategory and
	// NewCategory; an announced one has CorrectCategory (what it will become)
	// and CategoryUpdateTimestamp (when).
	PreviousCategory        string     `json:"previous_category,omitempty"`
	NewCategory             string     `json:"new_category,omitempty"`
	CorrectCategory         string     `json:"correct_category,omitempty"`
	CategoryUpdateTimestamp FlexString `json:"category_update_timestamp,omitempty"`

	// message_template_quality_update: GREEN, YELLOW, RED or UNKNOWN.
	PreviousQualityScore string `json:"previous_quality_score,omitempty"`
	NewQualityScore      string `json:"new_quality_score,omitempty"`
}

// DisableInfo is when a template is (to be) disabled.
type DisableInfo struct {
	DisableDate FlexString `json:"disable_date,omitempty"`
}

// Key is the template as funnel's outbox names it: name and language.
func (u *TemplateUpdate) Key() string { return TemplateKey(u.Name, u.Language) }

// TemplateKey names one template in one language ("name:language").
func TemplateKey(name, language string) string { return name + ":" + language }

// PhoneQualityUpdate is the value of a phone_number_quality_update change:
// the business number's quality or messaging limit changed. Event is FLAGGED,
// UNFLAGGED, UPGRADE, DOWNGRADE, ONBOARDING, THROUGHPUT_UPGRADE, …;
// CurrentLimit and OldLimit are tiers (TIER_250, TIER_1K, TIER_10K,
// TIER_100K, TIER_UNLIMITED, …; OldLimit only on a limit change), and
// MaxDailyConversationsPerBusiness is the portfolio's limit that replaces
// them (a count, or -1 for unlimited).
type PhoneQualityUpdate struct {
	DisplayPhoneNumber               string     `json:"display_phone_number"`
	Event                            string     `json:"event"`
	OldLimit                         string     `json:"old_limit,omitempty"`
	CurrentLimit                     string     `json:"current_limit,omitempty"`
	MaxDailyConversationsPerBusiness FlexString `json:"max_daily_conversations_per_business,omitempty"`
}

// FlexString is a value Meta documents sometimes as a JSON string and
// sometimes as a number (ids, timestamps, limits): either is read as its text.
type FlexString string

// UnmarshalJSON accepts a string, a number or null.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	*f = FlexString(n.String())
	return nil
}

// Key is an idempotency key: Meta redelivers webhooks, and the same template
// may change the same way twice at different times.
func (a *AccountUpdate) Key() string {
	t := strconv.FormatInt(a.Time.Unix(), 10)
	switch {
	case a.Template != nil:
		u := a.Template
		what := u.Event + u.NewCategory + u.CorrectCategory + u.NewQualityScore
		return "account:" + a.Field + ":" + u.Key() + ":" + what + ":" + t
	case a.Phone != nil:
		p := a.Phone
		return "account:" + a.Field + ":" + p.DisplayPhoneNumber + ":" + p.Event + ":" + p.CurrentLimit + ":" + string(p.MaxDailyConversationsPerBusiness) + ":" + t
	}
	return ""
}

var (
	accountWordRe   = regexp.MustCompile(`^[A-Z0-9_]{1,40}$`)
	templateNameRe  = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	templateLangRe  = regexp.MustCompile(`^[A-Za-z]{2,3}(_[A-Za-z0-9]{2,8})?$`)
	graphIDOrEmpty  = regexp.MustCompile(`^[0-9]{0,32}$`)
	limitOrEmptyRe  = regexp.MustCompile(`^-?[0-9]{0,12}$`)
	displayNumberRe = regexp.MustCompile(`^\+?[0-9][0-9 ]{4,24}$`)
)

// Accounts returns the account-level updates of the envelope (template
// status, category and quality, phone number quality) in the order Meta sent
// them. An update with a missing or malformed name, language, event or
// number is left out and reported in the error (errors.Join of *EventError),
// the others are returned: they become stored events and alerts, and what
// they name ends up in SQL parameters, logs and /v1/status.
func (e *Envelope) Accounts() ([]AccountUpdate, error) {
	if e == nil {
		return nil, nil
	}
	var out []AccountUpdate
	var errs []error
	for ei, en := range e.Entry {
		secs, terr := strconv.ParseInt(string(en.Time), 10, 64)
		if terr != nil || secs <= 0 {
			secs = 0
		}
		at := time.Unix(secs, 0).UTC()
		for ci, ch := range en.Changes {
			switch ch.Field {
			case FieldTemplateStatus, FieldTemplateCategory, FieldTemplateQuality:
				var u TemplateUpdate
				err := json.Unmarshal(ch.RawValue, &u)
				if err == nil {
					err = u.check(ch.Field)
				}
				if err == nil && secs == 0 {
					err = errors.New("missing entry time")
				}
				if err != nil {
					errs = append(errs, &EventError{ei, ci, 0, EventKind(ch.Field), u.Name, err})
					continue
				}
				u.Event, u.Category = strings.ToUpper(u.Event), strings.ToUpper(u.Category)
				out = append(out, AccountUpdate{Field: ch.Field, WABAID: en.ID, Time: at, Template: &u})
			case FieldPhoneQuality:
				var p PhoneQualityUpdate
				err := json.Unmarshal(ch.RawValue, &p)
				if err == nil {
					err = p.check()
				}
				if err == nil && secs == 0 {
					err = errors.New("missing entry time")
				}
				if err != nil {
					errs = append(errs, &EventError{ei, ci, 0, EventKind(ch.Field), p.DisplayPhoneNumber, err})
					continue
				}
				out = append(out, AccountUpdate{Field: ch.Field, WABAID: en.ID, Time: at, Phone: &p})
			}
		}
	}
	return out, errors.Join(errs...)
}

func (u *TemplateUpdate) check(field string) error {
	if !templateNameRe.MatchString(u.Name) {
		return fmt.Errorf("bad message_template_name %.40q: want a template name", u.Name)
	}
	if !templateLangRe.MatchString(u.Language) {
		return fmt.Errorf("bad message_template_language %.20q: want a language code like en_US", u.Language)
	}
	if !graphIDOrEmpty.MatchString(string(u.ID)) {
		return fmt.Errorf("bad message_template_id %.40q: want a Graph id", u.ID)
	}
	word := func(name, v string, required bool) error {
		if v == "" && !required {
			return nil
		}
		if !accountWordRe.MatchString(strings.ToUpper(v)) {
			return fmt.Errorf("bad %s %.40q: want an uppercase word", name, v)
		}
		return nil
	}
	var err error
	switch field {
	case FieldTemplateStatus:
		err = errors.Join(word("event", u.Event, true), word("message_template_category", u.Category, false))
	case FieldTemplateCategory:
		err = errors.Join(word("new_category", u.NewCategory, u.CorrectCategory == ""),
			word("previous_category", u.PreviousCategory, false), word("correct_category", u.CorrectCategory, false))
	case FieldTemplateQuality:
		err = errors.Join(word("new_quality_score", u.NewQualityScore, true), word("previous_quality_score", u.PreviousQualityScore, false))
	}
	if err != nil {
		return err
	}
	if len(u.Reason) > 1000 {
		u.Reason = u.Reason[:1000]
	}
	u.NewCategory, u.PreviousCategory, u.CorrectCategory = strings.ToUpper(u.NewCategory), strings.ToUpper(u.PreviousCategory), strings.ToUpper(u.CorrectCategory)
	u.NewQualityScore, u.PreviousQualityScore = strings.ToUpper(u.NewQualityScore), strings.ToUpper(u.PreviousQualityScore)
	return nil
}

func (p *PhoneQualityUpdate) check() error {
	if !displayNumberRe.MatchString(p.DisplayPhoneNumber) {
		return fmt.Errorf("bad display_phone_number %.40q: want a phone number", p.DisplayPhoneNumber)
	}
	if !accountWordRe.MatchString(p.Event) {
		return fmt.Errorf("bad event %.40q: want an uppercase word", p.Event)
	}
	for name, v := range map[string]string{"current_limit": p.CurrentLimit, "old_limit": p.OldLimit} {
		if v != "" && !accountWordRe.MatchString(v) {
			return fmt.Errorf("bad %s %.40q: want a tier like TIER_1K", name, v)
		}
	}
	if !limitOrEmptyRe.MatchString(string(p.MaxDailyConversationsPerBusiness)) {
		return fmt.Errorf("bad max_daily_conversations_per_business %.40q: want a count", p.MaxDailyConversationsPerBusiness)
	}
	return nil
}

// TierLimit is the number of unique users a messaging-limit tier allows in a
// rolling 24 hours (TIER_250 → 250, TIER_1K → 1000, …), -1 for
// TIER_UNLIMITED, 0 when the tier is not one of those.
func TierLimit(tier string) int {
	switch tier {
	case "TIER_50":
		return 50
	case "TIER_250":
		return 250
	case "TIER_1K":
		return 1000
	case "TIER_2K":
		return 2000
	case "TIER_10K":
		return 10000
	case "TIER_100K":
		return 100000
	case "TIER_UNLIMITED":
		return -1
	}
	return 0
}
