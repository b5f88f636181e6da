package dsl

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds a flow file. Real flows are a few kilobytes; anything near this
// is a mistake or an attack, and is refused before YAML sees it.
const MaxFileSize = 4 << 20

var (
	stepIDRe    = regexp.MustCompile(`^[a-z0-9_-]+$`)
	flowIDRe    = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	varNameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	yamlLineRe  = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	flowKeys    = []string{"flow", "description", "language", "quiet_hours", "assume_opt_in", "reenter", "trigger", "steps"}
	cronParser  = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	triggerKeys = func() []string {
		var ks []string
		for _, k := range TriggerKinds {
			ks = append(ks, string(k))
		}
		return ks
	}()
	actionKeys = func() []string {
		var ks []string
		for _, k := range ActionKinds {
			ks = append(ks, string(k))
		}
		return ks
	}()
)

// ParseFlow parses one flow file. It returns the flow (nil when the file is not a
// flow at all) and every syntax, schema, reference and expression diagnostic of the
// file. Project-level checks (templates, window, cross-flow references) run later.
func ParseFlow(file string, data []byte) (*Flow, []Diagnostic) {
	p := &parser{src: &source{name: file, data: data}}
	f := p.parseFile()
	if f != nil {
		f.File = file
		f.Source = data
		sum := sha256.Sum256(data)
		f.Hash = hex.EncodeToString(sum[:])
	}
	return f, dedupe(p.diags)
}

// dedupe drops repeated findings: content reached through several aliases is
// parsed once per alias, and its errors would be reported once per alias too.
func dedupe(ds []Diagnostic) []Diagnostic {
	type key struct {
		pos           Pos
		sev           Severity
		rule, message string
	}
	seen := make(map[key]bool, len(ds))
	out := ds[:0]
	for _, d := range ds {
		k := key{d.Pos, d.Severity, d.Rule, d.Message}
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

func (p *parser) parseFile() *Flow {
	data := p.src.data
	top := Pos{File: p.src.name, Line: 1, Col: 1}
	if len(data) > MaxFileSize {
		p.errorf(top, RuleSyntax, "file is %d bytes; flow files are limited to %d bytes", len(data), MaxFileSize)
		return nil
	}
	if !utf8.Valid(data) {
		line, col := firstInvalidUTF8(data)
		p.errorf(Pos{File: p.src.name, Line: line, Col: col}, RuleSyntax, "file is not valid UTF-8 text")
		return nil
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := decodeSafely(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(top, RuleSchema, "empty file: a flow needs `flow`, `trigger` and `steps`")
			return nil
		}
		p.syntaxError(err)
		return nil
	}
	var extra yaml.Node
	if err := decodeSafely(dec, &extra); err == nil {
		p.errorf(p.pos(&extra), RuleSyntax, "a flow file holds one YAML document; this is a second one (put each flow in its own file)")
	} else if !errors.Is(err, io.EOF) {
		p.syntaxError(err)
	}
	if len(doc.Content) == 0 {
		p.errorf(top, RuleSchema, "empty file: a flow needs `flow`, `trigger` and `steps`")
		return nil
	}
	p.untag(doc.Content[0], map[*yaml.Node]bool{})
	root := p.resolve(doc.Content[0])
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(p.pos(root), RuleSchema, "a flow file is a mapping with `flow`, `trigger` and `steps`, found %s", describeNode(root))
		return nil
	}
	return p.parseFlow(root)
}

func decodeSafely(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

func firstInvalidUTF8(b []byte) (line, col int) {
	line, col = 1, 1
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			return
		}
		if r == '\r' && len(b) > 1 && b[1] == '\n' {
			col++ // the \n that follows ends the line
		} else if isLineBreak(r) {
			line, col = line+1, 1
		} else {
			col++
		}
		b = b[size:]
	}
	return
}

// yamlParserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner). yaml.v3 prints the 0-based line for these (decode.go, parser.fail).
var yamlParserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// syntaxError turns a yaml.v3 error into a diagnostic at the line it names.
func (p *parser) syntaxError(err error) {
	msg := err.Error()
	line := 1
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if yamlParserProblems[msg] {
			// yaml.v3 adds 1 to the 0-based line of scanner errors only; a parser
			// error names the line before the one it is about.
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	col := 1
	lines := p.src.lineRunes()
	if msg == "found character that cannot start any token" && line <= len(lines) {
		// Most often a tab indenting the line: say so.
		for j, r := range lines[line-1] {
			if r == '\t' {
				msg = "found a tab character where an indentation space is expected (YAML indents with spaces only)"
				col = j + 1
				p.errorf(Pos{File: p.src.name, Line: line, Col: col}, RuleSyntax, "invalid YAML: %s", msg)
				return
			}
			if r != ' ' {
				break
			}
		}
	}
	if l, c, ok := p.locateSyntaxError(msg, line); ok {
		line, col = l, c
	} else if line > len(lines) {
		// At the end of a file without a final line break, yaml.v3 reports the
		// line after the last one: point just past the end of the last line.
		line = len(lines)
		col = len(lines[line-1]) + 1
	} else if line-1 < len(lines) {
		l := lines[line-1]
		for col-1 < len(l) && (l[col-1] == ' ' || l[col-1] == '\t') {
			col++
		}
	}
	if line-1 < len(lines) {
		// A `!` starting a value is a YAML tag; in a flow mapping or list
		// (`{if: !x}`) it swallows the closing bracket and the parse fails.
		if m := bangValueRe.FindStringIndex(string(lines[line-1])); m != nil {
			col = runeIndex(string(lines[line-1]), m[1]-1) + 1
			msg += "; a value starting with `!` is read as a YAML tag: quote the whole value"
		}
	}
	p.errorf(Pos{File: p.src.name, Line: line, Col: col}, RuleSyntax, "invalid YAML: %s", msg)
}

// bangValueRe finds a plain value starting with `!` after a key, a dash or a
// bracket.
var bangValueRe = regexp.MustCompile(`(?:^\s*-|[:\[{,])\s+!|[\[{,]!`)

var yamlUnknownAnchorRe = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// locateSyntaxError finds the character a yaml.v3 error is about when the error
// names no line or only the line where the enclosing construct began: a tab in
// the indentation, an alias to an undefined anchor, a control character.
func (p *parser) locateSyntaxError(msg string, line int) (int, int, bool) {
	lines := p.src.lineRunes()
	switch {
	case strings.Contains(msg, "tab character"):
		for i := max(line-1, 0); i < len(lines); i++ {
			for j, r := range lines[i] {
				if r == '\t' {
					return i + 1, j + 1, true
				}
				if r != ' ' {
					break
				}
			}
		}
	case yamlUnknownAnchorRe.MatchString(msg):
		alias := []rune("*" + yamlUnknownAnchorRe.FindStringSubmatch(msg)[1])
		for i, l := range lines {
			for j := 0; j+len(alias) <= len(l); j++ {
				if string(l[j:j+len(alias)]) == string(alias) &&
					(j+len(alias) == len(l) || strings.ContainsRune(" \t,]}", l[j+len(alias)])) {
					return i + 1, j + 1, true
				}
			}
		}
	case msg == "control characters are not allowed":
		for i, l := range lines {
			for j, r := range l {
				if isYAMLControl(r) {
					return i + 1, j + 1, true
				}
			}
		}
	}
	return 0, 0, false
}

// isYAMLControl reports the characters YAML does not allow in a stream (the
// complement of its c-printable set, less the line breaks lineRunes removes).
func isYAMLControl(r rune) bool {
	switch {
	case r == '\t' || r == '\r' || r == 0x85:
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
		return true
	}
	return false
}

func (p *parser) parseFlow(root *yaml.Node) *Flow {
	ps, _ := p.mapping(root, "the flow")
	f := &Flow{stepIndex: map[string]int{}}
	var triggerNode, stepsNode *yaml.Node
	got := map[string]bool{}
	for _, kv := range ps {
		got[kv.key] = true
		switch kv.key {
		case "flow":
			if s, ok := p.str(kv.value, "`flow`"); ok {
				f.ID, f.Pos = s, p.pos(kv.value)
				if !flowIDRe.MatchString(s) {
					p.errorf(f.Pos, RuleSchema, "flow id %q may only use letters, digits, `_` and `-`", s)
				}
				p.flow = s
			}
		case "description":
			f.Description, _ = p.str(kv.value, "`description`")
		case "language":
			f.Language, _ = p.str(kv.value, "`language`")
		case "quiet_hours":
			f.QuietHours = p.parseQuietHours(kv.value)
		case "assume_opt_in":
			f.AssumeOptIn, _ = p.boolean(kv.value, "`assume_opt_in`")
		case "reenter":
			f.Reenter, _ = p.boolean(kv.value, "`reenter`")
		case "trigger":
			triggerNode = kv.value
		case "steps":
			stepsNode = kv.value
		}
	}
	p.checkKeys(ps, "the flow", flowKeys...)
	for _, req := range []string{"flow", "trigger", "steps"} {
		if !got[req] {
			p.errorf(p.pos(root), RuleSchema, "missing required key `%s` in the flow", req)
		}
	}
	if triggerNode != nil {
		f.Trigger = p.parseTrigger(triggerNode)
	}
	if stepsNode != nil {
		p.parseSteps(f, stepsNode)
	}
	return f
}

func (p *parser) parseQuietHours(n *yaml.Node) *QuietHours {
	ps, ok := p.mapping(n, "`quiet_hours`")
	if !ok {
		return nil
	}
	q := &QuietHours{Pos: p.pos(p.resolve(n)), Timezone: "contact"}
	p.checkKeys(ps, "`quiet_hours`", "from", "to", "timezone")
	var haveFrom, haveTo, bad bool
	for _, kv := range ps {
		switch kv.key {
		case "from", "to":
			s, ok := p.str(kv.value, "`"+kv.key+"`")
			if !ok {
				bad = true
				continue
			}
			c, err := ParseClock(s)
			if err != nil {
				p.errorf(p.pos(kv.value), RuleSchema, "quiet_hours `%s`: %v", kv.key, err)
				bad = true
				continue
			}
			if kv.key == "from" {
				q.From, haveFrom = c, true
			} else {
				q.To, haveTo = c, true
			}
		case "timezone":
			if s, ok := p.str(kv.value, "`timezone`"); ok {
				q.Timezone = s
				if s != "contact" {
					q.Location = p.location(kv.value, s)
				}
			}
		}
	}
	if bad {
		return nil // reported above
	}
	if !haveFrom || !haveTo {
		p.errorf(q.Pos, RuleSchema, "quiet_hours needs both `from` and `to` (HH:MM)")
		return nil
	}
	if q.From == q.To {
		p.errorf(q.Pos, RuleSchema, "quiet_hours `from` and `to` are both %s: the span is empty", q.From)
		return nil
	}
	return q
}

func (p *parser) location(n *yaml.Node, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || strings.EqualFold(name, "local") {
		p.errorf(p.pos(n), RuleSchema, "unknown time zone %q: use an IANA name like Europe/Lisbon or America/Sao_Paulo", name)
		return nil
	}
	return loc
}

func (p *parser) parseTrigger(n *yaml.Node) Trigger {
	var t Trigger
	n = p.resolve(n)
	if n == nil {
		return t
	}
	t.Pos = p.pos(n)
	// `trigger: message` is accepted as the bare kind.
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" && contains(triggerKeys, n.Value) && n.Value != string(TriggerSchedule) && n.Value != string(TriggerEvent) {
		t.Kind = TriggerKind(n.Value)
		return t
	}
	ps, ok := p.mapping(n, "`trigger`")
	if !ok {
		return t
	}
	if len(ps) == 0 {
		p.errorf(t.Pos, RuleSchema, "`trigger` needs one of: %s", strings.Join(triggerKeys, ", "))
		return t
	}
	p.checkKeys(ps, "`trigger`", triggerKeys...)
	var kinds []string
	for _, kv := range ps {
		if !contains(triggerKeys, kv.key) {
			continue
		}
		kinds = append(kinds, kv.key)
		if len(kinds) > 1 {
			p.errorf(p.pos(kv.kNode), RuleSchema, "a flow has exactly one trigger; found `%s` and `%s` (make a second flow for the other)", kinds[0], kv.key)
			continue
		}
		t.Kind = TriggerKind(kv.key)
		t.Pos = p.pos(kv.kNode)
		p.parseTriggerBody(&t, kv.value)
	}
	return t
}

func (p *parser) parseTriggerBody(t *Trigger, n *yaml.Node) {
	n = p.resolve(n)
	if n == nil {
		return
	}
	null := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	what := "`" + string(t.Kind) + "`"
	switch t.Kind {
	case TriggerClickToWhatsApp, TriggerMessage:
		if null {
			return
		}
	case TriggerEvent:
		if n.Kind == yaml.ScalarNode && !null {
			t.Event, _ = p.id(n, "the event name")
			return
		}
	}
	ps, ok := p.mapping(n, what)
	if !ok {
		return
	}
	switch t.Kind {
	case TriggerClickToWhatsApp:
		p.checkKeys(ps, what, "ads", "text")
		for _, kv := range ps {
			switch kv.key {
			case "ads":
				var nodes []*yaml.Node
				t.Ads, nodes = p.strList(kv.value, "`ads`")
				for _, n := range nodes {
					t.AdPos = append(t.AdPos, p.pos(n))
				}
			case "text":
				t.Text = p.regexp(kv.value, "`text`")
			}
		}
	case TriggerMessage:
		p.checkKeys(ps, what, "keywords", "pattern")
		for _, kv := range ps {
			switch kv.key {
			case "keywords":
				kws, nodes := p.strList(kv.value, "`keywords`")
				for i, k := range kws {
					if strings.TrimSpace(k) == "" {
						p.errorf(p.pos(nodes[i]), RuleSchema, "empty keyword")
						continue
					}
					t.Keywords = append(t.Keywords, strings.TrimSpace(k))
				}
			case "pattern":
				t.Pattern = p.regexp(kv.value, "`pattern`")
			}
		}
	case TriggerSchedule:
		p.checkKeys(ps, what, "cron", "audience", "timezone")
		var cronNode *yaml.Node
		for _, kv := range ps {
			switch kv.key {
			case "cron":
				cronNode = kv.value
				t.Cron, _ = p.id(kv.value, "`cron`")
			case "audience":
				t.Audience = p.expr(kv.value, "`audience`", exprBool)
			case "timezone":
				if s, ok := p.str(kv.value, "`timezone`"); ok {
					t.Timezone = s
					t.Location = p.location(kv.value, s)
				}
			}
		}
		if cronNode == nil {
			p.errorf(t.Pos, RuleSchema, "a `schedule` trigger needs `cron` (like \"0 10 * * 1\": Mondays at 10:00)")
		} else if t.Cron != "" {
			s, err := cronParser.Parse(t.Cron)
			if err != nil {
				p.errorf(p.pos(cronNode), RuleSchema, "invalid cron spec %q: %v (five fields: minute hour day-of-month month day-of-week, or @daily, @every 1h)", t.Cron, err)
			}
			t.Schedule = s
		}
		if t.Location == nil {
			t.Location = time.UTC
		}
	case TriggerEvent:
		p.checkKeys(ps, what, "name")
		named := false
		for _, kv := range ps {
			if kv.key == "name" {
				named = true
				t.Event, _ = p.id(kv.value, "the event `name`")
			}
		}
		if t.Event == "" && !named {
			p.errorf(t.Pos, RuleSchema, "an `event` trigger needs a `name`")
		}
	}
}

func (p *parser) regexp(n *yaml.Node, what string) *regexp.Regexp {
	s, ok := p.str(n, what)
	if !ok {
		return nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		p.errorf(p.pos(p.resolve(n)), RuleSchema, "%s is not a valid regular expression: %v", what, err)
		return nil
	}
	return re
}

func (p *parser) parseSteps(f *Flow, n *yaml.Node) {
	items, ok := p.seq(n, "`steps`")
	if !ok {
		return
	}
	if len(items) == 0 {
		p.errorf(p.pos(p.resolve(n)), RuleSchema, "`steps` is empty: a flow needs at least one step")
		return
	}
	first := map[string]Pos{}
	for i, item := range items {
		s := p.parseStep(item, i)
		if s == nil {
			continue
		}
		if prev, dup := first[s.ID]; dup && s.ID != "" {
			p.errorf(s.Pos, RuleReference, "duplicate step id `%s` (first at line %d)", s.ID, prev.Line)
			continue
		}
		if s.ID != "" {
			first[s.ID] = s.Pos
		}
		s.Index = len(f.Steps)
		f.Steps = append(f.Steps, s)
		if s.ID != "" {
			f.stepIndex[s.ID] = s.Index
		}
	}
	p.step = ""
}

func (p *parser) parseStep(n *yaml.Node, i int) *Step {
	p.step = ""
	ps, ok := p.mapping(n, fmt.Sprintf("step %d", i+1))
	if !ok {
		return nil
	}
	s := &Step{Pos: p.pos(n)}
	for _, kv := range ps {
		if kv.key == "id" {
			if id, ok := p.str(kv.value, "the step `id`"); ok {
				s.ID, s.Pos = id, p.pos(p.resolve(kv.value))
				p.step = id
				if !stepIDRe.MatchString(id) {
					p.errorf(s.Pos, RuleSchema, "step id %q may only use a-z, 0-9, `_` and `-`", id)
				}
			}
		}
	}
	what := "step " + strconv.Itoa(i+1)
	if s.ID != "" {
		what = "step `" + s.ID + "`"
	} else {
		p.errorf(s.Pos, RuleSchema, "%s has no `id`", what)
	}
	p.checkKeys(ps, what, append([]string{"id", "next"}, actionKeys...)...)
	var actions []pair
	for _, kv := range ps {
		switch {
		case kv.key == "next":
			if id, ok := p.id(kv.value, "`next`"); ok {
				s.Next, s.NextPos = id, p.pos(p.resolve(kv.value))
			}
		case contains(actionKeys, kv.key):
			actions = append(actions, kv)
		}
	}
	switch len(actions) {
	case 0:
		p.errorf(s.Pos, RuleSchema, "%s has no action: give it one of %s", what, strings.Join(actionKeys, ", "))
		return s
	case 1:
	default:
		p.errorf(p.pos(actions[1].kNode), RuleSchema, "%s has two actions, `%s` and `%s`: a step does one thing, so split it into two steps", what, actions[0].key, actions[1].key)
	}
	a := actions[0]
	s.Kind, s.KPos = ActionKind(a.key), p.pos(a.kNode)
	p.parseAction(s, a.value)
	return s
}
