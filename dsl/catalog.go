package dsl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Template is one message template as Meta holds it, in one language.
type Template struct {
	Name     string
	Language string
	Category string // MARKETING, UTILITY, AUTHENTICATION
	Status   string // APPROVED, PENDING, REJECTED, PAUSED, DISABLED, …
	// StatusChangedAt is when the status changed, as far as the catalog knows
	// (`status_changed_at`, which `funnel templates pull` records); zero when
	// unknown.
	StatusChangedAt time.Time
	// Quality is Meta's quality rating: GREEN, YELLOW, RED, UNKNOWN ("" when
	// the catalog does not say).
	Quality string
	// ParameterFormat is POSITIONAL ({{1}}) or NAMED ({{first_name}}).
	ParameterFormat string
	HeaderFormat    string // "", TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION
	HeaderText      string
	Body            string
	Footer          string
	Buttons         []TemplateButton
	BodyParams      []string // placeholders of the body, in order of first use
	HeaderParams    []string // placeholders of a TEXT header
	Pos             Pos      // where the catalog defines it
}

// TemplateButton is one button of a template.
type TemplateButton struct {
	Type string // QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, …
	Text string
	URL  string
}

// Approved reports whether Meta lets the template be sent.
func (t *Template) Approved() bool { return t.Status == "APPROVED" }

// Named reports whether the template uses named parameters.
func (t *Template) Named() bool { return t.ParameterFormat == "NAMED" }

// MediaHeader reports whether the template's header needs a media link at send time.
func (t *Template) MediaHeader() bool {
	switch t.HeaderFormat {
	case "IMAGE", "VIDEO", "DOCUMENT":
		return true
	}
	return false
}

// Catalog is the set of templates a project may send.
type Catalog struct {
	File      string
	templates map[string]*Template // name + "\x00" + language
	languages map[string][]string  // name -> languages
}

// NewCatalog builds a catalog from templates (later entries win).
func NewCatalog(file string, ts []*Template) *Catalog {
	c := &Catalog{File: file, templates: map[string]*Template{}, languages: map[string][]string{}}
	for _, t := range ts {
		finishTemplate(t)
		k := t.Name + "\x00" + t.Language
		if _, dup := c.templates[k]; !dup {
			c.languages[t.Name] = append(c.languages[t.Name], t.Language)
		}
		c.templates[k] = t
	}
	for _, l := range c.languages {
		sort.Strings(l)
	}
	return c
}

// Lookup finds a template in one language.
func (c *Catalog) Lookup(name, language string) (*Template, bool) {
	if c == nil {
		return nil, false
	}
	t, ok := c.templates[name+"\x00"+language]
	return t, ok
}

// Languages lists the languages a template name exists in.
func (c *Catalog) Languages(name string) []string {
	if c == nil {
		return nil
	}
	return c.languages[name]
}

// Names lists every template name, sorted.
func (c *Catalog) Names() []string {
	if c == nil {
		return nil
	}
	ns := make([]string, 0, len(c.languages))
	for n := range c.languages {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// All lists every template, sorted by name and language.
func (c *Catalog) All() []*Template {
	var ts []*Template
	for _, n := range c.Names() {
		for _, l := range c.languages[n] {
			ts = append(ts, c.templates[n+"\x00"+l])
		}
	}
	return ts
}

var placeholderRe = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}`)

// Placeholders lists the distinct {{…}} names of a template text in order.
func Placeholders(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range placeholderRe.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

func finishTemplate(t *Template) {
	t.Status = strings.ToUpper(t.Status)
	t.Category = strings.ToUpper(t.Category)
	t.HeaderFormat = strings.ToUpper(t.HeaderFormat)
	t.BodyParams = Placeholders(t.Body)
	if t.HeaderFormat == "TEXT" {
		t.HeaderParams = Placeholders(t.HeaderText)
	}
	if t.ParameterFormat == "" {
		t.ParameterFormat = "POSITIONAL"
		for _, p := range append(append([]string(nil), t.BodyParams...), t.HeaderParams...) {
			if p[0] < '0' || p[0] > '9' {
				t.ParameterFormat = "NAMED"
			}
		}
	}
	t.ParameterFormat = strings.ToUpper(t.ParameterFormat)
}

// ParseStatusTime reads a `status_changed_at`: RFC 3339, or a date
// (2026-11-27, taken as midnight UTC).
func ParseStatusTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want a date (2026-11-27) or an RFC 3339 time (2026-11-27T09:30:00Z)", s)
}

// LoadCatalog reads a catalog file: the project's own YAML (`templates: [...]`) or,
// unchanged, the JSON that GET /{waba-id}/message_templates returns (`data: [...]`).
func LoadCatalog(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCatalog(path, data)
}

// ParseCatalog parses catalog bytes; file names positions.
func ParseCatalog(file string, data []byte) (*Catalog, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		// JSON that YAML refuses (tabs, say): decode it without positions.
		var any map[string]json.RawMessage
		if jerr := json.Unmarshal(data, &any); jerr != nil {
			return nil, fmt.Errorf("%s: not a template catalog: %v", file, err)
		}
		var norm yaml.Node
		if err := norm.Encode(jsonToAny(data)); err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{&norm}}
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty template catalog", file)
	}
	doc := root.Content[0]
	var list *yaml.Node
	switch doc.Kind {
	case yaml.SequenceNode:
		list = doc
	case yaml.MappingNode:
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if k := doc.Content[i].Value; k == "templates" || k == "data" {
				list = doc.Content[i+1]
			}
		}
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s: not a template catalog: expected `templates:` (funnel's format) or `data:` (Meta's message_templates JSON) holding a list", file)
	}
	var ts []*Template
	for i, item := range list.Content {
		t, err := templateFromNode(item)
		if err != nil {
			return nil, fmt.Errorf("%s:%d:%d: template %d: %v", file, item.Line, item.Column, i+1, err)
		}
		t.Pos = Pos{File: file, Line: item.Line, Col: item.Column}
		ts = append(ts, t)
	}
	return NewCatalog(file, ts), nil
}

func jsonToAny(data []byte) any {
	var v any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	_ = d.Decode(&v)
	return v
}

// catalogEntry is both formats at once: Meta's (components) and funnel's (body,
// header, footer, buttons as plain fields).
type catalogEntry struct {
	Name            string      `yaml:"name"`
	Language        any         `yaml:"language"`
	Category        string      `yaml:"category"`
	Status          string      `yaml:"status"`
	ParameterFormat string      `yaml:"parameter_format"`
	Components      []component `yaml:"components"`
	Body            string      `yaml:"body"`
	Header          any         `yaml:"header"`
	Footer          string      `yaml:"footer"`
	Buttons         []any       `yaml:"buttons"`
	// StatusChangedAt is funnel's own key (templates pull writes it beside
	// Meta's fields): when the status changed.
	StatusChangedAt string `yaml:"status_changed_at"`
	// QualityScore is Meta's {score, date}; Quality funnel's plain form.
	QualityScore any    `yaml:"quality_score"`
	Quality      string `yaml:"quality"`
}

type component struct {
	Type    string `yaml:"type"`
	Format  string `yaml:"format"`
	Text    string `yaml:"text"`
	Buttons []struct {
		Type string `yaml:"type"`
		Text string `yaml:"text"`
		URL  string `yaml:"url"`
	} `yaml:"buttons"`
}

func templateFromNode(n *yaml.Node) (*Template, error) {
	var e catalogEntry
	if err := n.Decode(&e); err != nil {
		return nil, err
	}
	if e.Name == "" {
		return nil, fmt.Errorf("missing `name`")
	}
	t := &Template{Name: e.Name, Category: e.Category, Status: e.Status, ParameterFormat: e.ParameterFormat,
		Body: e.Body, Footer: e.Footer}
	switch l := e.Language.(type) {
	case string:
		t.Language = l
	case map[string]any: // {"code": "en_US"} as some exports write it
		t.Language, _ = l["code"].(string)
	}
	if t.Language == "" {
		return nil, fmt.Errorf("template %q: missing `language`", e.Name)
	}
	if t.Status == "" {
		return nil, fmt.Errorf("template %q: missing `status`", e.Name)
	}
	if e.StatusChangedAt != "" {
		at, err := ParseStatusTime(e.StatusChangedAt)
		if err != nil {
			return nil, fmt.Errorf("template %q: status_changed_at: %v", e.Name, err)
		}
		t.StatusChangedAt = at
	}
	t.Quality = strings.ToUpper(e.Quality)
	switch q := e.QualityScore.(type) {
	case string:
		t.Quality = strings.ToUpper(q)
	case map[string]any:
		if sc, ok := q["score"].(string); ok {
			t.Quality = strings.ToUpper(sc)
		}
	}
	switch h := e.Header.(type) {
	case string:
		switch f := strings.ToUpper(h); f {
		case "IMAGE", "VIDEO", "DOCUMENT", "LOCATION":
			t.HeaderFormat = f
		default:
			t.HeaderFormat, t.HeaderText = "TEXT", h
		}
	case map[string]any:
		f, _ := h["format"].(string)
		if f == "" {
			f, _ = h["type"].(string)
		}
		t.HeaderText, _ = h["text"].(string)
		if f == "" && t.HeaderText != "" {
			f = "TEXT"
		}
		t.HeaderFormat = f
	}
	for _, b := range e.Buttons {
		switch b := b.(type) {
		case string:
			t.Buttons = append(t.Buttons, TemplateButton{Type: "QUICK_REPLY", Text: b})
		case map[string]any:
			bt := TemplateButton{Type: "QUICK_REPLY"}
			if s, ok := b["type"].(string); ok {
				bt.Type = strings.ToUpper(s)
			}
			bt.Text, _ = b["text"].(string)
			bt.URL, _ = b["url"].(string)
			t.Buttons = append(t.Buttons, bt)
		}
	}
	for _, c := range e.Components {
		switch strings.ToUpper(c.Type) {
		case "HEADER":
			t.HeaderFormat, t.HeaderText = c.Format, c.Text
		case "BODY":
			t.Body = c.Text
		case "FOOTER":
			t.Footer = c.Text
		case "BUTTONS":
			for _, b := range c.Buttons {
				t.Buttons = append(t.Buttons, TemplateButton{Type: strings.ToUpper(b.Type), Text: b.Text, URL: b.URL})
			}
		}
	}
	return t, nil
}
