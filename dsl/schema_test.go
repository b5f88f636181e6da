package dsl

// The JSON Schema of flow files (schema.json) against the parser, which is the
// truth for what a flow file may hold:
//
//   - its key sets are the parser's (flowKeys, triggerKeys, actionKeys, sendKeys);
//   - it accepts every flow that ParseFlow accepts: the shipped flows, the
//     validator's ok cases and the realistic flows below;
//   - everything it rejects, ParseFlow rejects too with a schema or syntax
//     diagnostic: a table of wrong shapes, an unknown key added to every mapping
//     of the accepted flows, and every error case of the validator's suite.
//
// Known differences are listed in schemaTestStricter (the schema refuses what is
// a mistake the parser lets through, see the report there) and schemaTestLenient
// (what JSON Schema cannot express, left to the parser).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

var (
	schemaTestOnce     sync.Once
	schemaTestCompiled *jsonschema.Schema
	schemaTestErr      error
)

func schemaTestSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	schemaTestOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
		if err != nil {
			schemaTestErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("schema.json", doc); err != nil {
			schemaTestErr = err
			return
		}
		schemaTestCompiled, schemaTestErr = c.Compile("schema.json")
	})
	if schemaTestErr != nil {
		t.Fatalf("schema.json does not compile: %v", schemaTestErr)
	}
	return schemaTestCompiled
}

// schemaTestJSON turns a YAML document into the JSON value an editor's YAML
// language server validates: aliases followed, merge keys applied (explicit keys
// first, then earlier merge sources before later ones), scalars typed by their
// resolved YAML tag, timestamps and other tags kept as their text. It refuses
// what JSON cannot hold: duplicate keys, keys that are not scalars, and alias
// expansions past a budget.
func schemaTestJSON(data []byte) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	budget := 100000
	return schemaTestValue(&doc, &budget, 0)
}

func schemaTestValue(n *yaml.Node, budget *int, depth int) (any, error) {
	*budget--
	if *budget < 0 || depth > 200 {
		return nil, errors.New("document too large or too deep")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return schemaTestValue(n.Content[0], budget, depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("unknown alias %s", n.Value)
		}
		return schemaTestValue(n.Alias, budget, depth+1)
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int":
			var v any
			if err := n.Decode(&v); err != nil {
				return nil, err
			}
			return json.Number(fmt.Sprint(v)), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, err
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return n.Value, nil // JSON has no such number; keep the text
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := schemaTestValue(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				merges = append(merges, v)
				continue
			}
			for k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key that is not a plain value", k.Line)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			val, err := schemaTestValue(v, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		for _, m := range merges {
			src, err := schemaTestValue(m, budget, depth+1)
			if err != nil {
				return nil, err
			}
			sources := []any{src}
			if list, ok := src.([]any); ok {
				sources = list
			}
			for _, s := range sources {
				sm, ok := s.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("line %d: a merge key needs a mapping", m.Line)
				}
				for k, v := range sm {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected YAML node kind %v", n.Kind)
}

// schemaTestCheck validates a flow file's text; nil when the schema accepts it.
func schemaTestCheck(t *testing.T, data []byte) error {
	t.Helper()
	v, err := schemaTestJSON(data)
	if err != nil {
		return fmt.Errorf("not representable as JSON: %w", err)
	}
	return schemaTestSchema(t).Validate(v)
}

// schemaTestDiags returns the parser's diagnostics of the rules the schema
// stands for: schema and syntax.
func schemaTestDiags(name string, data []byte) []Diagnostic {
	_, ds := ParseFlow(name, data)
	var out []Diagnostic
	for _, d := range ds {
		if d.Rule == RuleSchema || d.Rule == RuleSyntax {
			out = append(out, d)
		}
	}
	return out
}

func TestJSONSchemaIsACopy(t *testing.T) {
	a := JSONSchema()
	a[0] = 'x'
	if b := JSONSchema(); b[0] != '{' {
		t.Error("JSONSchema returns the embedded bytes, not a copy")
	}
	if !json.Valid(JSONSchema()) {
		t.Error("schema.json is not valid JSON")
	}
	schemaTestSchema(t)
}

// TestJSONSchemaDescriptions: editors show descriptions on hover and in
// completions, so every property has one, and so does every shared definition
// that a property uses without its own.
func TestJSONSchemaDescriptions(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(JSONSchema(), &root); err != nil {
		t.Fatal(err)
	}
	defs := root["definitions"].(map[string]any)
	hasDescription := func(s map[string]any) bool {
		if d, _ := s["description"].(string); strings.TrimSpace(d) != "" {
			return true
		}
		if ref, _ := s["$ref"].(string); ref != "" {
			def, _ := defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
			d, _ := def["description"].(string)
			return strings.TrimSpace(d) != ""
		}
		return false
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for k, p := range props {
					if ps, ok := p.(map[string]any); !ok || !hasDescription(ps) {
						t.Errorf("%s/properties/%s has no description", path, k)
					}
				}
			}
			for k, c := range v {
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(path+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("#", root)
	for _, r := range []string{"$schema", "title", "description"} {
		if _, ok := root[r]; !ok {
			t.Errorf("schema.json has no %q", r)
		}
	}
	if root["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %v, want draft-07", root["$schema"])
	}
}

// TestJSONSchemaKeysMatchParser compares the schema's key sets with the lists the
// parser checks keys against, so that a key added to one shows up in the other.
func TestJSONSchemaKeysMatchParser(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(JSONSchema(), &root); err != nil {
		t.Fatal(err)
	}
	defs := root["definitions"].(map[string]any)
	keys := func(s any) []string {
		var ks []string
		for k := range s.(map[string]any)["properties"].(map[string]any) {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	same := func(what string, got, want []string) {
		t.Helper()
		want = slices.Clone(want)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema has %v, parser %v", what, got, want)
		}
	}
	same("flow keys", keys(root), flowKeys)
	trigger := root["properties"].(map[string]any)["trigger"].(map[string]any)["oneOf"].([]any)
	same("trigger kinds", keys(trigger[1]), triggerKeys)
	var bare []string
	for _, k := range trigger[0].(map[string]any)["enum"].([]any) {
		bare = append(bare, k.(string))
	}
	same("bare trigger kinds", bare, []string{string(TriggerClickToWhatsApp), string(TriggerMessage)})
	same("step keys", keys(defs["step"]), append([]string{"id", "next"}, actionKeys...))
	var oneOf []string
	for _, b := range defs["step"].(map[string]any)["oneOf"].([]any) {
		oneOf = append(oneOf, b.(map[string]any)["required"].([]any)[0].(string))
	}
	sort.Strings(oneOf)
	same("step actions (oneOf)", oneOf, actionKeys)

	// The object form of send has exactly sendKeys, and one of sendBodies.
	same("send keys", keys(defs["message"]), sendKeys)
	var bodies []string
	for _, b := range defs["message"].(map[string]any)["oneOf"].([]any) {
		bodies = append(bodies, b.(map[string]any)["required"].([]any)[0].(string))
	}
	sort.Strings(bodies)
	same("send bodies", bodies, sendBodies)
	// Template-only keys need a template; buttons need a text.
	var deps []string
	for k := range defs["message"].(map[string]any)["dependencies"].(map[string]any) {
		deps = append(deps, k)
	}
	sort.Strings(deps)
	same("send dependencies", deps, append([]string{"buttons", "fallback"}, templateOnly...))
	same("fallback keys", keys(defs["fallback"].(map[string]any)["oneOf"].([]any)[1]), []string{"template", "language", "params", "header"})
	same("list keys", keys(defs["list"]), []string{"text", "body", "button", "header", "footer", "sections", "rows"})
}

// schemaTestFlows are realistic flows that together use every action in every
// form and every trigger form. Each parses without any diagnostic.
var schemaTestFlows = map[string]string{
	"ctwa_summer.yaml": `
# yaml-language-server: $schema=../dsl/schema.json
flow: summer-sale
description: Summer ad → code → day-3 reminder
language: en_US
quiet_hours: {from: "21:00", to: "09:00", timezone: contact}
trigger:
  click_to_whatsapp:
    ads: ["120226305854810726", "120226305854810727"]
    text: "(?i)summer"
steps:
  - id: welcome
    send:
      text: "Hi ${contact.name}! You came from “${entry.headline}”. Want your code?"
      buttons: ["Yes please", "Not now"]
  - id: answer
    wait_for_reply: {timeout: 4h, on_timeout: day3}
  - id: route
    branch:
      - if: reply.text == "Yes please"
        goto: code
      - goto: day3
  - id: code
    send: {text: "Your code is SUMMER20."}
  - id: day3
    wait: 3d
  - id: reengage
    send:
      template: summer_reminder
      params: ["${contact.name}"]
`,
	"keyword_menu.yaml": `
flow: menu
trigger:
  message:
    keywords: [menu, hi, "Olá", 1]
steps:
  - id: show
    send:
      list:
        body: "What can we help you with, ${contact.name}?"
        button: Topics
        header: Summer shop
        footer: Reply any time
        sections:
          - title: Shopping
            rows:
              - {id: sale, title: Summer sale, description: "20% off sandals"}
              - {id: new, title: New arrivals}
          - title: Help
            rows: [Opening hours, "Talk to a person"]
  - id: pick
    wait_for_reply: 1h
  - id: route
    branch:
      - if: reply.payload == "sale"
        goto: sale
  - id: other
    send: "Someone will answer shortly."
    next: bye
  - id: sale
    send:
      text: "Want the catalogue?"
      buttons:
        - {id: catalogue-yes, title: "Yes"}
        - {title: "No"}
  - id: bye
    end: true
`,
	"pattern_media.yaml": `
flow: catalogue
trigger:
  message:
    pattern: "^(catalog|catalogue)$"
steps:
  - id: photo
    send:
      image: https://example.com/catalogue.jpg
  - id: photo-caption
    send:
      image: {link: "https://example.com/c.jpg", caption: "Our catalogue"}
  - id: clip
    send:
      video: {link: "https://example.com/intro.mp4", caption: "Hi ${contact.name}"}
  - id: clip-plain
    send: {video: "https://example.com/intro.mp4"}
  - id: shop
    send:
      cta_url:
        text: "The whole catalogue is online, ${contact.name}."
        button: Open the shop
        url: "https://example.com/shop?c=${contact.wa_id}"
        header: Summer shop
        footer: Free returns
  - id: shop-plain
    send: {cta_url: {text: "See the shop", button: Shop, url: "https://example.com"}}
  - id: signup
    send:
      form:
        flow_id: "1234567890"
        text: "Tell us your size and we keep the right pairs for you."
        cta: Sign up
        screen: SIGN_UP
        data: {first_name: "${contact.name}", visits: 2, vip: false}
        mode: draft
        header: Summer club
        footer: Takes a minute
  - id: signup-short
    send: {form: {flow_id: 99, text: "Join", cta: Join, screen: 1}}
  - id: where
    send:
      location_request: "Where should we deliver, ${contact.name}?"
  - id: where-map
    send: {location_request: {text: "Share your location"}}
  - id: pdf
    send:
      document:
        link: https://example.com/catalogue.pdf
        caption: The full catalogue
        filename: "catalogue-${now.Year()}.pdf"
  - id: pdf-plain
    send: {document: "https://example.com/price-list.pdf"}
  - id: anything-else
    wait_for_reply:
  - id: morning
    wait: {for: 1d, at: "09:30"}
  - id: bye
    end: catalogue_sent
`,
	"weekly_broadcast.yaml": `
flow: weekly-broadcast
language: en_US
trigger:
  schedule:
    cron: "0 10 * * 1"
    audience: contact.opted_in && "vip" in contact.tags
    timezone: America/Sao_Paulo
steps:
  - id: deals
    send:
      template: weekly_deals
      language: en_US
      params: ["${contact.name}"]
  - id: wait-reply
    wait_for_reply: {timeout: 2d}
  - id: thanks
    send: {text: "Thanks!", fallback: welcome_back}
  - id: mark
    tag: [weekly, engaged]
  - id: unmark
    untag: cold
`,
	"order_shipped.yaml": `
flow: order-shipped
language: en_US
assume_opt_in: true
trigger:
  event: order_shipped
steps:
  - id: notify
    send:
      template: order_update
      params:
        first_name: "${contact.name}"
        order_id: "${event.order_id}"
  - id: remember
    set:
      order: "${event.order_id}"
      notified: true
      attempts: 1
      ratio: 0.5
      nothing: null
      greeting: "Hi ${contact.name}"
      contact.city: Lisbon
      contact.timezone: Europe/Lisbon
      contact.attributes.segment: shipped
      vars.campaign: summer
  - id: question
    wait_for_reply: {timeout: 3d, on_timeout: survey}
  - id: help
    send: "Track order ${event.order_id} at ${event.tracking_url}."
    next: survey
  - id: survey
    start_flow: survey
`,
	"cart_abandoned.yaml": `
flow: cart_abandoned
language: pt_BR
reenter: true
trigger:
  event:
    name: cart_abandoned
steps:
  - id: remind
    send:
      template: summer_reminder
      language: pt_BR
      params: ["${contact.name}"]
  - id: wait-any
    wait_for_reply: {}
  - id: wait-true
    wait_for_reply: true
  - id: ask
    send:
      text: "Still want it?"
      buttons: ["Yes", "No"]
      fallback:
        template: welcome_back
        language: pt_BR
  - id: jump
    goto: done
  - id: skipped
    opt_out: true
  - id: done
    end: abandoned
`,
	"bare_ctwa.yaml": `
flow: bare-ctwa
trigger: click_to_whatsapp
steps:
  - id: hi
    send: "Hi! Thanks for tapping our ad."
  - id: consent
    send:
      text: "Can we send you offers now and then?"
      buttons: [{id: consent-yes, title: "Yes"}, {id: consent-no, title: "No"}]
  - id: answer
    wait_for_reply: 30m
  - id: route
    branch:
      - if: reply.payload == "consent-yes"
        goto: opt-in
      - goto: opt-out
  - id: opt-in
    opt_in: true
    next: done
  - id: opt-out
    opt_out: true
  - id: done
    end: true
`,
	"bare_message.yaml": `
flow: support
description: Any message opens a support conversation
assume_opt_in: false
reenter: false
quiet_hours:
  from: "22:00"
  to: "07:30"
  timezone: Europe/Lisbon
trigger: message
steps:
  - id: ack
    send: "We got your message and will answer soon."
  - id: later
    wait: 1d12h
  - id: follow-up
    send:
      template: welcome_back
`,
	"null_bodies.yaml": `
flow: null-bodies
trigger:
  message:
steps:
  - id: hi
    send: Hello
  - id: pause
    wait: {for: 90m}
  - id: morning
    wait: {at: "10:00"}
`,
	"fallbacks.yaml": `
flow: fallbacks
language: en_US
trigger:
  click_to_whatsapp: {}
steps:
  - id: photo
    send:
      image: https://example.com/a.jpg
      fallback:
        template: promo_image
        header: https://example.com/a.jpg
        params: ["${contact.name}"]
  - id: wait
    wait: 2d
  - id: menu
    send:
      list:
        text: Pick one
        button: Options
        rows: [A, B, {title: C, description: "The third one"}]
      fallback:
        template: order_update
        params: {first_name: "${contact.name}", order_id: "A-1"}
  - id: doc
    send:
      document: {link: "https://example.com/i.pdf", filename: invoice.pdf}
      fallback: {template: invoice, header: "https://example.com/i.pdf", params: ["A-1", 42.5]}
  - id: promo-video
    send:
      template: product_video
      header: "https://example.com/v.mp4"
      params: ["${contact.name}"]
`,
	"anchors.yaml": `
flow: anchors
language: en_US
description: &desc Anchors and aliases
trigger:
  message:
    keywords: &kw [hi, hello, hey]
steps:
  - id: hello
    send: &ask
      text: "Hi ${contact.name}! Interested?"
      buttons: &yesno ["Yes", "No"]
  - id: answer
    wait_for_reply: &short {timeout: 2h, on_timeout: bye}
  - id: again
    send:
      <<: *ask
      text: "Just checking: interested?"
  - id: answer-again
    wait_for_reply: *short
  - id: tags
    tag: *kw
  - id: both
    send:
      <<: [{text: "Merged from a list"}, {buttons: *yesno}]
  - &bye
    id: bye
    end: *desc
`,
	"numbers_as_text.yaml": `
flow: 2024
trigger:
  click_to_whatsapp:
    ads: [120226305854810726, 120226305854810727]
steps:
  - id: 1
    send:
      text: 42
      buttons: [1, 2, 3]
  - id: 2
    wait_for_reply: {timeout: 1h, on_timeout: 4}
  - id: 3
    send:
      list:
        text: Choose a size
        button: Sizes
        rows: [36, 38, {id: 40, title: 40}]
    next: 4
  - id: 4
    send:
      template: appointment_reminder
      language: en_US
      params: [2026, 2.5, true]
  - id: 5
    tag: 2024
  - id: 6
    end: 404
`,
	"crlf_unicode.yaml": "flow: ola-mundo\r\ntrigger:\r\n  message:\r\n    keywords: [olá, \"promoção\", 你好, مرحبا]\r\nsteps:\r\n  - id: ola\r\n    send: \"Olá ${contact.name}! 👋\"\r\n",
}

// schemaTestAcceptedFiles lists the flow files of flows/ and the validator's ok
// cases, whichever exist when the test runs.
func schemaTestAcceptedFiles(t *testing.T) []string {
	var files []string
	for _, dir := range []string{"../flows", "../testdata/validate/ok"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return fs.SkipDir
				}
				return err
			}
			if !d.IsDir() && IsFlowFile(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return files
}

func TestJSONSchemaAccepts(t *testing.T) {
	var names []string
	for name := range schemaTestFlows {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run("inline/"+name, func(t *testing.T) {
			data := []byte(schemaTestFlows[name])
			if _, ds := ParseFlow(name, data); len(ds) > 0 {
				for _, d := range ds {
					t.Errorf("parser: %v", d)
				}
			}
			if err := schemaTestCheck(t, data); err != nil {
				t.Errorf("schema rejects it:\n%v", err)
			}
		})
	}
	files := schemaTestAcceptedFiles(t)
	t.Logf("%d inline flows, %d flow files", len(names), len(files))
	for _, file := range files {
		t.Run(filepath.ToSlash(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range schemaTestDiags(file, data) {
				t.Errorf("parser: %v", d)
			}
			if err := schemaTestCheck(t, data); err != nil {
				t.Errorf("schema rejects it:\n%v", err)
			}
		})
	}
}

// schemaTestFlow makes a flow around steps (YAML list items, indented by two).
func schemaTestFlow(steps string) string {
	return "flow: t\ntrigger: message\nsteps:\n" + steps
}

// schemaTestTrigger makes a flow around a trigger value.
func schemaTestTrigger(trigger string) string {
	return "flow: t\ntrigger: " + trigger + "\nsteps:\n  - id: a\n    end: true\n"
}

// schemaTestRejected are shapes both the schema and the parser refuse.
var schemaTestRejected = []struct{ name, yaml string }{
	// the file
	{"empty document", "# nothing\n"},
	{"root is a list", "- flow: t\n"},
	{"root is a string", "hello\n"},
	{"unknown root key", schemaTestFlow("  - id: a\n    end: true\n") + "colour: red\n"},
	{"misspelled root key", "flow: t\ntriger: message\nsteps:\n  - id: a\n    end: true\n"},
	{"missing flow", "trigger: message\nsteps:\n  - id: a\n    end: true\n"},
	{"missing trigger", "flow: t\nsteps:\n  - id: a\n    end: true\n"},
	{"missing steps", "flow: t\ntrigger: message\n"},
	{"flow id with a space", "flow: summer sale\ntrigger: message\nsteps:\n  - id: a\n    end: true\n"},
	{"flow id empty", "flow: ''\ntrigger: message\nsteps:\n  - id: a\n    end: true\n"},
	{"flow id a boolean", "flow: true\ntrigger: message\nsteps:\n  - id: a\n    end: true\n"},
	{"flow id a mapping", "flow: {id: t}\ntrigger: message\nsteps:\n  - id: a\n    end: true\n"},
	{"description a list", "description: [a]\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"language a boolean", "language: false\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"assume_opt_in a string", "assume_opt_in: \"yes\"\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"reenter a number", "reenter: 1\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"quiet_hours a string", "quiet_hours: \"21:00-09:00\"\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"quiet_hours unknown key", "quiet_hours: {from: \"21:00\", to: \"09:00\", start: \"21:00\"}\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"quiet_hours without to", "quiet_hours: {from: \"21:00\"}\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"quiet_hours H:MM", "quiet_hours: {from: \"9:00\", to: \"17:00\"}\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"quiet_hours 24:00", "quiet_hours: {from: \"21:00\", to: \"24:00\"}\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"quiet_hours empty time zone", "quiet_hours: {from: \"21:00\", to: \"09:00\", timezone: ''}\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"quiet_hours local time zone", "quiet_hours: {from: \"21:00\", to: \"09:00\", timezone: Local}\n" + schemaTestFlow("  - id: a\n    end: true\n")},

	// the trigger
	{"trigger null", schemaTestTrigger("")},
	{"trigger empty", schemaTestTrigger("{}")},
	{"trigger with two kinds", schemaTestTrigger("{message: null, event: order}")},
	{"trigger unknown kind", schemaTestTrigger("{webhook: {}}")},
	{"trigger unknown kind as a string", schemaTestTrigger("webhook")},
	{"trigger bare schedule", schemaTestTrigger("schedule")},
	{"trigger bare event", schemaTestTrigger("event")},
	{"trigger a list", schemaTestTrigger("[message]")},
	{"click_to_whatsapp unknown key", schemaTestTrigger("{click_to_whatsapp: {ad: [\"1\"]}}")},
	{"click_to_whatsapp a string", schemaTestTrigger("{click_to_whatsapp: summer}")},
	{"ads a boolean", schemaTestTrigger("{click_to_whatsapp: {ads: true}}")},
	{"ads null", schemaTestTrigger("{click_to_whatsapp: {ads: null}}")},
	{"ads a mapping", schemaTestTrigger("{click_to_whatsapp: {ads: {id: 1}}}")},
	{"ad id a list", schemaTestTrigger("{click_to_whatsapp: {ads: [[1]]}}")},
	{"message a string", schemaTestTrigger("{message: hi}")},
	{"message unknown key", schemaTestTrigger("{message: {keyword: hi}}")},
	{"message empty keyword", schemaTestTrigger("{message: {keywords: [hi, \"  \"]}}")},
	{"message keyword a boolean", schemaTestTrigger("{message: {keywords: [hi, true]}}")},
	{"message pattern a list", schemaTestTrigger("{message: {pattern: [a]}}")},
	{"schedule null", schemaTestTrigger("{schedule: null}")},
	{"schedule a string", schemaTestTrigger("{schedule: \"@daily\"}")},
	{"schedule without cron", schemaTestTrigger("{schedule: {audience: contact.opted_in}}")},
	{"schedule unknown key", schemaTestTrigger("{schedule: {cron: \"@daily\", at: \"10:00\"}}")},
	{"schedule cron a list", schemaTestTrigger("{schedule: {cron: [\"@daily\"]}}")},
	{"schedule contact time zone", schemaTestTrigger("{schedule: {cron: \"@daily\", timezone: contact}}")},
	{"schedule audience null", schemaTestTrigger("{schedule: {cron: \"@daily\", audience: null}}")},
	{"event null", schemaTestTrigger("{event: null}")},
	{"event a boolean", schemaTestTrigger("{event: true}")},
	{"event without name", schemaTestTrigger("{event: {}}")},
	{"event empty name", schemaTestTrigger("{event: {name: ''}}")},
	{"event unknown key", schemaTestTrigger("{event: {name: order, payload: {}}}")},
	{"event name a list", schemaTestTrigger("{event: {name: [order]}}")},

	// steps
	{"steps empty", "flow: t\ntrigger: message\nsteps: []\n"},
	{"steps null", "flow: t\ntrigger: message\nsteps:\n"},
	{"steps a mapping", "flow: t\ntrigger: message\nsteps: {a: {end: true}}\n"},
	{"step a string", schemaTestFlow("  - hello\n")},
	{"step without id", schemaTestFlow("  - send: hi\n")},
	{"step id uppercase", schemaTestFlow("  - id: Welcome\n    end: true\n")},
	{"step id with a space", schemaTestFlow("  - id: day 3\n    end: true\n")},
	{"step id with a dot", schemaTestFlow("  - id: day.3\n    end: true\n")},
	{"step id non-ASCII", schemaTestFlow("  - id: olá\n    end: true\n")},
	{"step id a boolean", schemaTestFlow("  - id: true\n    end: true\n")},
	{"step id a fraction", schemaTestFlow("  - id: 1.5\n    end: true\n")},
	{"step with two actions", schemaTestFlow("  - id: a\n    send: hi\n    wait: 1h\n")},
	{"step with no action", schemaTestFlow("  - id: a\n    next: b\n  - id: b\n    end: true\n")},
	{"step unknown key", schemaTestFlow("  - id: a\n    send: hi\n    delay: 1h\n")},
	{"step misspelled action", schemaTestFlow("  - id: a\n    sned: hi\n")},
	{"next a list", schemaTestFlow("  - id: a\n    send: hi\n    next: [b]\n  - id: b\n    end: true\n")},

	// send
	{"send null", schemaTestFlow("  - id: a\n    send:\n")},
	{"send a boolean", schemaTestFlow("  - id: a\n    send: true\n")},
	{"send a list", schemaTestFlow("  - id: a\n    send: [hi]\n")},
	{"send two bodies", schemaTestFlow("  - id: a\n    send: {text: hi, image: \"https://x/a.jpg\"}\n")},
	{"send text and template", schemaTestFlow("  - id: a\n    send: {text: hi, template: t}\n")},
	{"send without body", schemaTestFlow("  - id: a\n    send: {buttons: [a]}\n")},
	{"send unknown key", schemaTestFlow("  - id: a\n    send: {text: hi, emoji: true}\n")},
	{"text a list", schemaTestFlow("  - id: a\n    send: {text: [hi]}\n")},
	{"text null", schemaTestFlow("  - id: a\n    send: {text: null}\n")},
	{"buttons a number", schemaTestFlow("  - id: a\n    send: {text: hi, buttons: 3}\n")},
	{"buttons a string", schemaTestFlow("  - id: a\n    send: {text: hi, buttons: \"Yes, No\"}\n")},
	{"buttons null", schemaTestFlow("  - id: a\n    send: {text: hi, buttons: null}\n")},
	{"button a boolean", schemaTestFlow("  - id: a\n    send: {text: hi, buttons: [Yes, true]}\n")},
	{"button null", schemaTestFlow("  - id: a\n    send: {text: hi, buttons: [Yes, null]}\n")},
	{"button without title", schemaTestFlow("  - id: a\n    send: {text: hi, buttons: [{id: y}]}\n")},
	{"button unknown key", schemaTestFlow("  - id: a\n    send: {text: hi, buttons: [{title: Yes, payload: y}]}\n")},
	{"button id a list", schemaTestFlow("  - id: a\n    send: {text: hi, buttons: [{id: [y], title: Yes}]}\n")},
	{"buttons on an image", schemaTestFlow("  - id: a\n    send: {image: \"https://x/a.jpg\", buttons: [Yes]}\n")},
	{"language on a text", schemaTestFlow("  - id: a\n    send: {text: hi, language: en_US}\n")},
	{"params on a text", schemaTestFlow("  - id: a\n    send: {text: hi, params: [a]}\n")},
	{"header on a list", schemaTestFlow("  - id: a\n    send: {list: {text: a, button: b, rows: [c]}, header: x}\n")},
	{"fallback on a template", schemaTestFlow("  - id: a\n    send: {template: t, fallback: u}\n")},
	{"image null", schemaTestFlow("  - id: a\n    send: {image: null}\n")},
	{"image a list", schemaTestFlow("  - id: a\n    send: {image: [\"https://x/a.jpg\"]}\n")},
	{"image without link", schemaTestFlow("  - id: a\n    send: {image: {caption: Hi}}\n")},
	{"image with a filename", schemaTestFlow("  - id: a\n    send: {image: {link: \"https://x/a.jpg\", filename: a.jpg}}\n")},
	{"video unknown key", schemaTestFlow("  - id: a\n    send: {video: {link: \"https://x/a.mp4\", autoplay: true}}\n")},
	{"document link a boolean", schemaTestFlow("  - id: a\n    send: {document: {link: true}}\n")},
	{"list a string", schemaTestFlow("  - id: a\n    send: {list: \"a, b\"}\n")},
	{"list without button", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, rows: [a]}}\n")},
	{"list without text", schemaTestFlow("  - id: a\n    send: {list: {button: Open, rows: [a]}}\n")},
	{"list with text and body", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, body: Pick, button: Open, rows: [a]}}\n")},
	{"list without rows", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open}}\n")},
	{"list unknown key", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open, rows: [a], title: x}}\n")},
	{"list sections empty", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open, sections: []}}\n")},
	{"list section a string", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open, sections: [Shoes]}}\n")},
	{"list section unknown key", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open, sections: [{title: S, items: [a]}]}}\n")},
	{"list rows a string", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open, rows: a}}\n")},
	{"list row without title", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open, rows: [{id: a}]}}\n")},
	{"list row unknown key", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open, rows: [{title: A, value: a}]}}\n")},
	{"list row a boolean", schemaTestFlow("  - id: a\n    send: {list: {text: Pick, button: Open, rows: [false]}}\n")},
	{"template name a boolean", schemaTestFlow("  - id: a\n    send: {template: true}\n")},
	{"template name null", schemaTestFlow("  - id: a\n    send: {template: null}\n")},
	{"template params a string", schemaTestFlow("  - id: a\n    send: {template: t, params: \"a, b\"}\n")},
	{"template params null", schemaTestFlow("  - id: a\n    send: {template: t, params: null}\n")},
	{"template param a list", schemaTestFlow("  - id: a\n    send: {template: t, params: [[a]]}\n")},
	{"template param null", schemaTestFlow("  - id: a\n    send: {template: t, params: [a, null]}\n")},
	{"template named param a mapping", schemaTestFlow("  - id: a\n    send: {template: t, params: {name: {first: a}}}\n")},
	{"template header a list", schemaTestFlow("  - id: a\n    send: {template: t, header: [a]}\n")},
	{"template language a list", schemaTestFlow("  - id: a\n    send: {template: t, language: [en]}\n")},
	{"fallback null", schemaTestFlow("  - id: a\n    send: {text: hi, fallback: null}\n")},
	{"fallback a boolean", schemaTestFlow("  - id: a\n    send: {text: hi, fallback: true}\n")},
	{"fallback a list", schemaTestFlow("  - id: a\n    send: {text: hi, fallback: [t]}\n")},
	{"fallback without template", schemaTestFlow("  - id: a\n    send: {text: hi, fallback: {language: en_US}}\n")},
	{"fallback unknown key", schemaTestFlow("  - id: a\n    send: {text: hi, fallback: {template: t, category: MARKETING}}\n")},
	{"fallback text", schemaTestFlow("  - id: a\n    send: {text: hi, fallback: {template: t, text: hi}}\n")},

	// wait
	{"wait null", schemaTestFlow("  - id: a\n    wait:\n")},
	{"wait in words", schemaTestFlow("  - id: a\n    wait: 3 days\n")},
	{"wait units out of order", schemaTestFlow("  - id: a\n    wait: 1h1d\n")},
	{"wait unit twice", schemaTestFlow("  - id: a\n    wait: 1h30m15m\n")},
	{"wait zero", schemaTestFlow("  - id: a\n    wait: 0s\n")},
	{"wait zero in two units", schemaTestFlow("  - id: a\n    wait: 0d0h\n")},
	{"wait a number", schemaTestFlow("  - id: a\n    wait: 90\n")},
	{"wait a fraction", schemaTestFlow("  - id: a\n    wait: 1.5h\n")},
	{"wait negative", schemaTestFlow("  - id: a\n    wait: -1h\n")},
	{"wait empty", schemaTestFlow("  - id: a\n    wait: ''\n")},
	{"wait unknown unit", schemaTestFlow("  - id: a\n    wait: 10x\n")},
	{"wait Go duration", schemaTestFlow("  - id: a\n    wait: 1h0m0.5s\n")},
	{"wait a boolean", schemaTestFlow("  - id: a\n    wait: true\n")},
	{"wait a list", schemaTestFlow("  - id: a\n    wait: [1h]\n")},
	{"wait empty mapping", schemaTestFlow("  - id: a\n    wait: {}\n")},
	{"wait unknown key", schemaTestFlow("  - id: a\n    wait: {for: 1h, until: \"10:00\"}\n")},
	{"wait for bad", schemaTestFlow("  - id: a\n    wait: {for: 1 hour}\n")},
	{"wait at 25:00", schemaTestFlow("  - id: a\n    wait: {for: 1d, at: \"25:00\"}\n")},
	{"wait at H", schemaTestFlow("  - id: a\n    wait: {at: \"9\"}\n")},
	{"wait at 9:00", schemaTestFlow("  - id: a\n    wait: {at: \"9:00\"}\n")},
	{"wait at 09:00:00", schemaTestFlow("  - id: a\n    wait: {at: \"09:00:00\"}\n")},

	// wait_for_reply
	{"wait_for_reply false", schemaTestFlow("  - id: a\n    wait_for_reply: false\n")},
	{"wait_for_reply in words", schemaTestFlow("  - id: a\n    wait_for_reply: 4 hours\n")},
	{"wait_for_reply zero", schemaTestFlow("  - id: a\n    wait_for_reply: 0m\n")},
	{"wait_for_reply a number", schemaTestFlow("  - id: a\n    wait_for_reply: 4\n")},
	{"wait_for_reply a list", schemaTestFlow("  - id: a\n    wait_for_reply: [4h]\n")},
	{"wait_for_reply unknown key", schemaTestFlow("  - id: a\n    wait_for_reply: {timeout: 4h, retry: 2}\n")},
	{"wait_for_reply on_timeout alone", schemaTestFlow("  - id: a\n    wait_for_reply: {on_timeout: b}\n  - id: b\n    end: true\n")},
	{"wait_for_reply bad timeout", schemaTestFlow("  - id: a\n    wait_for_reply: {timeout: 4hours}\n")},
	{"wait_for_reply timeout null", schemaTestFlow("  - id: a\n    wait_for_reply: {timeout: null}\n")},
	{"wait_for_reply on_timeout a list", schemaTestFlow("  - id: a\n    wait_for_reply: {timeout: 1h, on_timeout: [b]}\n")},

	// branch
	{"branch null", schemaTestFlow("  - id: a\n    branch:\n")},
	{"branch empty", schemaTestFlow("  - id: a\n    branch: []\n")},
	{"branch a mapping", schemaTestFlow("  - id: a\n    branch: {if: \"true\", goto: a}\n")},
	{"branch case a string", schemaTestFlow("  - id: a\n    branch: [a]\n")},
	{"branch case without goto", schemaTestFlow("  - id: a\n    branch:\n      - if: reply.text == \"x\"\n")},
	{"branch case unknown key", schemaTestFlow("  - id: a\n    branch:\n      - if: reply.text == \"x\"\n        goto: a\n        else: b\n")},
	{"branch if null", schemaTestFlow("  - id: a\n    branch:\n      - if:\n        goto: a\n")},
	{"branch if a list", schemaTestFlow("  - id: a\n    branch:\n      - if: [a]\n        goto: a\n")},
	{"branch goto a boolean", schemaTestFlow("  - id: a\n    branch:\n      - goto: true\n")},
	{"branch goto empty", schemaTestFlow("  - id: a\n    branch:\n      - goto: ''\n")},

	// set
	{"set null", schemaTestFlow("  - id: a\n    set:\n")},
	{"set empty", schemaTestFlow("  - id: a\n    set: {}\n")},
	{"set a list", schemaTestFlow("  - id: a\n    set: [a]\n")},
	{"set contact.opted_in", schemaTestFlow("  - id: a\n    set: {contact.opted_in: true}\n")},
	{"set contact.tags", schemaTestFlow("  - id: a\n    set: {contact.tags: vip}\n")},
	{"set contact.wa_id", schemaTestFlow("  - id: a\n    set: {contact.wa_id: \"351910000000\"}\n")},
	{"set a name with a space", schemaTestFlow("  - id: a\n    set: {\"my var\": 1}\n")},
	{"set a name with a dot", schemaTestFlow("  - id: a\n    set: {order.id: 1}\n")},
	{"set a name starting with a digit", schemaTestFlow("  - id: a\n    set: {1st: 1}\n")},
	{"set vars with a dot", schemaTestFlow("  - id: a\n    set: {vars.a.b: 1}\n")},
	{"set a list value", schemaTestFlow("  - id: a\n    set: {x: [1]}\n")},
	{"set a mapping value", schemaTestFlow("  - id: a\n    set: {x: {a: 1}}\n")},

	// tag, untag
	{"tag null", schemaTestFlow("  - id: a\n    tag:\n")},
	{"tag empty list", schemaTestFlow("  - id: a\n    tag: []\n")},
	{"tag empty string", schemaTestFlow("  - id: a\n    tag: ''\n")},
	{"tag blank in a list", schemaTestFlow("  - id: a\n    tag: [vip, \" \"]\n")},
	{"tag a boolean", schemaTestFlow("  - id: a\n    tag: true\n")},
	{"tag a mapping", schemaTestFlow("  - id: a\n    tag: {name: vip}\n")},
	{"tag a nested list", schemaTestFlow("  - id: a\n    tag: [[vip]]\n")},
	{"untag null", schemaTestFlow("  - id: a\n    untag:\n")},
	{"untag a boolean in a list", schemaTestFlow("  - id: a\n    untag: [vip, false]\n")},

	// opt_in, opt_out
	{"opt_in false", schemaTestFlow("  - id: a\n    opt_in: false\n")},
	{"opt_in null", schemaTestFlow("  - id: a\n    opt_in:\n")},
	{"opt_in a string", schemaTestFlow("  - id: a\n    opt_in: \"yes\"\n")},
	{"opt_out a number", schemaTestFlow("  - id: a\n    opt_out: 1\n")},
	{"opt_out false", schemaTestFlow("  - id: a\n    opt_out: false\n")},

	// start_flow, goto, end
	{"start_flow null", schemaTestFlow("  - id: a\n    start_flow:\n")},
	{"start_flow a mapping", schemaTestFlow("  - id: a\n    start_flow: {flow: other}\n")},
	{"start_flow a boolean", schemaTestFlow("  - id: a\n    start_flow: true\n")},
	{"goto null", schemaTestFlow("  - id: a\n    goto:\n")},
	{"goto a list", schemaTestFlow("  - id: a\n    goto: [a]\n")},
	{"end false", schemaTestFlow("  - id: a\n    end: false\n")},
	{"end null", schemaTestFlow("  - id: a\n    end:\n")},
	{"end a list", schemaTestFlow("  - id: a\n    end: [done]\n")},
	{"end a mapping", schemaTestFlow("  - id: a\n    end: {reason: done}\n")},

	// merge keys are applied before validation, and what they bring is checked
	{"merge brings a second action", schemaTestFlow("  - &w {id: w, wait: 1h}\n  - <<: *w\n    id: a\n    send: hi\n")},
	{"merge brings an unknown key", schemaTestFlow("  - id: a\n    wait_for_reply: &w {timeout: 1h}\n  - id: b\n    send: {<<: *w, text: hi}\n")},
}

func TestJSONSchemaRejects(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range schemaTestRejected {
		if seen[c.name] {
			t.Errorf("case %q listed twice", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.yaml)
			if err := schemaTestCheck(t, data); err == nil {
				t.Errorf("the schema accepts it:\n%s", c.yaml)
			}
			if len(schemaTestDiags("case.yaml", data)) == 0 {
				_, all := ParseFlow("case.yaml", data)
				t.Errorf("the parser reports no schema or syntax diagnostic (got %v) for:\n%s", all, c.yaml)
			}
		})
	}
}

// schemaTestStricter were once mistakes the schema refused while ParseFlow let
// them through silently (empty names taken as nothing). The parser reports them
// now; the test keeps both sides honest.
var schemaTestStricter = []struct{ name, yaml, why string }{
	{"empty cron", schemaTestTrigger("{schedule: {cron: ''}}"), "no schedule at all, no diagnostic"},
	{"empty event name", schemaTestTrigger("{event: ''}"), "`event: {name: ''}` is refused, `event: ''` is not"},
	{"empty template name", schemaTestFlow("  - id: a\n    send: {template: ''}\n"), "a send with no message at all, no diagnostic"},
	{"empty fallback name", schemaTestFlow("  - id: a\n    send: {text: hi, fallback: ''}\n"), "the fallback is dropped, no diagnostic"},
	{"empty fallback template", schemaTestFlow("  - id: a\n    send: {text: hi, fallback: {template: ''}}\n"), "the fallback is dropped, no diagnostic"},
	{"empty next", schemaTestFlow("  - id: a\n    send: hi\n    next: ''\n"), "taken as no `next`, no diagnostic"},
	{"empty goto", schemaTestFlow("  - id: a\n    goto: ''\n"), "a goto to nowhere, no diagnostic (not even from the reference check)"},
	{"empty on_timeout", schemaTestFlow("  - id: a\n    wait_for_reply: {timeout: 1h, on_timeout: ''}\n"), "taken as no `on_timeout`, no diagnostic"},
	{"empty start_flow", schemaTestFlow("  - id: a\n    start_flow: ''\n"), "a start_flow to nothing, no diagnostic (not even from the reference check)"},
}

func TestJSONSchemaStricterThanParser(t *testing.T) {
	for _, c := range schemaTestStricter {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.yaml)
			if err := schemaTestCheck(t, data); err == nil {
				t.Errorf("the schema accepts it:\n%s", c.yaml)
			}
			if ds := schemaTestDiags("case.yaml", data); len(ds) == 0 {
				t.Errorf("the parser accepts it (%s):\n%s", c.why, c.yaml)
			}
		})
	}
}

// schemaTestLenient are mistakes JSON Schema cannot see; ParseFlow (or the
// checks after it) reports them.
var schemaTestLenient = []struct{ name, yaml string }{
	{"duplicate key", "flow: t\nflow: u\ntrigger: message\nsteps:\n  - id: a\n    end: true\n"},
	{"unknown time zone", "quiet_hours: {from: \"21:00\", to: \"09:00\", timezone: Mars/Olympus}\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"empty quiet hours", "quiet_hours: {from: \"09:00\", to: \"09:00\"}\n" + schemaTestFlow("  - id: a\n    end: true\n")},
	{"invalid regular expression", schemaTestTrigger("{message: {pattern: \"(unclosed\"}}")},
	{"invalid cron spec", schemaTestTrigger("{schedule: {cron: \"every monday\"}}")},
	{"duration too long", schemaTestFlow("  - id: a\n    wait: 99999999999w\n")},
	{"default case not last", schemaTestFlow("  - id: a\n    branch:\n      - goto: a\n      - if: reply.text == \"x\"\n        goto: a\n")},
	{"hexadecimal step id", schemaTestFlow("  - id: 0x1F\n    end: true\n")},
}

// schemaTestReferences are references the schema takes as any name, like the
// parser: whether the step or flow exists is the reference check's to say.
var schemaTestReferences = []string{
	schemaTestFlow("  - id: a\n    send: hi\n    next: Day 3\n"),
	schemaTestFlow("  - id: a\n    goto: Day 3\n"),
	schemaTestFlow("  - id: a\n    branch:\n      - goto: Day 3\n"),
	schemaTestFlow("  - id: a\n    wait_for_reply: {timeout: 1h, on_timeout: Day 3}\n"),
	schemaTestFlow("  - id: a\n    start_flow: other flow\n"),
}

func TestJSONSchemaReferencesAreNames(t *testing.T) {
	for _, src := range schemaTestReferences {
		data := []byte(src)
		if ds := schemaTestDiags("case.yaml", data); len(ds) > 0 {
			t.Errorf("the parser reports %v for:\n%s", ds, src)
		}
		if err := schemaTestCheck(t, data); err != nil {
			t.Errorf("the schema rejects:\n%s\n%v", src, err)
		}
	}
}

func TestJSONSchemaLenient(t *testing.T) {
	for _, c := range schemaTestLenient {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.yaml)
			if len(schemaTestDiags("case.yaml", data)) == 0 {
				t.Errorf("the parser accepts it:\n%s", c.yaml)
			}
			v, err := schemaTestJSON(data)
			if err != nil {
				t.Logf("not representable as JSON: %v", err)
				return
			}
			if err := schemaTestSchema(t).Validate(v); err != nil {
				t.Logf("the schema now rejects it too: %v", err)
			}
		})
	}
}

// TestJSONSchemaUnknownKeyAnywhere adds an unknown key to every mapping of every
// accepted flow, one at a time: the schema and the parser both refuse each.
// Mappings whose keys are names the user chooses (`set`, named `params`, a
// form's `data`) are skipped.
func TestJSONSchemaUnknownKeyAnywhere(t *testing.T) {
	inputs := map[string][]byte{}
	for name, src := range schemaTestFlows {
		inputs["inline/"+name] = []byte(src)
	}
	for _, file := range schemaTestAcceptedFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.ToSlash(file)] = data
	}
	var names []string
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	total := 0
	for _, name := range names {
		for i := 0; ; i++ {
			mutated, where, ok := schemaTestAddKey(t, inputs[name], i)
			if !ok {
				break
			}
			if mutated == nil {
				continue
			}
			total++
			if err := schemaTestCheck(t, mutated); err == nil {
				t.Errorf("%s: the schema accepts an unknown key in %s:\n%s", name, where, mutated)
			}
			found := false
			for _, d := range schemaTestDiags(name, mutated) {
				found = found || strings.Contains(d.Message, "zz_unknown")
			}
			if !found {
				t.Errorf("%s: the parser does not report the unknown key in %s:\n%s", name, where, mutated)
			}
		}
	}
	t.Logf("%d mutated flows", total)
	if total < 100 {
		t.Errorf("only %d mappings mutated", total)
	}
}

// schemaTestAddKey adds `zz_unknown: 1` to the i-th mapping of the document (in
// document order). ok is false when there is no i-th mapping; mutated is nil
// when that mapping takes names of the user's choosing.
func schemaTestAddKey(t *testing.T, data []byte, i int) (mutated []byte, where string, ok bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	var target *yaml.Node
	var targetKey string
	var walk func(node *yaml.Node, key string)
	walk = func(node *yaml.Node, key string) {
		if node == nil || target != nil {
			return
		}
		switch node.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range node.Content {
				walk(c, key)
			}
		case yaml.MappingNode:
			if n == i {
				target, targetKey = node, key
				return
			}
			n++
			for j := 0; j+1 < len(node.Content); j += 2 {
				walk(node.Content[j+1], node.Content[j].Value)
			}
		}
	}
	walk(&doc, "")
	if target == nil {
		return nil, "", false
	}
	where = fmt.Sprintf("the mapping at line %d (under %q)", target.Line, targetKey)
	if targetKey == "set" || targetKey == "params" || targetKey == "data" {
		return nil, where, true
	}
	target.Content = append(target.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "zz_unknown"},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "1"})
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out, where, true
}

// TestJSONSchemaAgreesOnErrorCases runs the schema over the validator's error
// cases: whatever it rejects, the parser must reject with a schema or syntax
// diagnostic (the schema is never stricter than the parser, but for
// schemaTestStricter).
func TestJSONSchemaAgreesOnErrorCases(t *testing.T) {
	dir := "../testdata/validate/err"
	if _, err := os.Stat(dir); err != nil {
		t.Skip(err)
	}
	rejected, total := 0, 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !IsFlowFile(path) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		total++
		parser := schemaTestDiags(path, data)
		v, err := schemaTestJSON(data)
		if err != nil {
			if len(parser) == 0 {
				t.Errorf("%s: not representable as JSON (%v), yet the parser reports no schema or syntax diagnostic", path, err)
			}
			rejected++
			return nil
		}
		if verr := schemaTestSchema(t).Validate(v); verr != nil {
			rejected++
			if len(parser) == 0 {
				t.Errorf("%s: the schema rejects it, the parser reports no schema or syntax diagnostic:\n%v", path, verr)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the schema rejects %d of %d error cases", rejected, total)
}

// TestJSONSchemaMutations changes the accepted flows at random, a value or a key
// at a time (with a fixed seed), and requires the schema and the parser to agree
// on every result: both accept it, or both refuse it (the parser with a schema
// or syntax diagnostic). Values that only the parser can judge (cron specs, time
// zones, an `if` removed from a branch case, which makes a default case that
// may not be last) and the differences listed in schemaTestStricter and
// schemaTestLenient are left out.
func TestJSONSchemaMutations(t *testing.T) {
	var srcs [][]byte
	var names []string
	for name := range schemaTestFlows {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		srcs = append(srcs, []byte(schemaTestFlows[name]))
	}
	for _, f := range schemaTestAcceptedFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, b)
	}
	values := []string{`x`, `Day 3`, `0`, `-1`, `1.5`, `true`, `false`, `null`, `1h`, `0s`,
		`25:00`, `"09:00"`, `[]`, `{}`, `[a]`, `{a: 1}`, `[1]`, `[true]`, `[null]`, `contact`,
		`message`, `"  "`, `{text: hi}`, `{template: t}`, `{link: x}`, `{title: t}`, `{for: 1h}`,
		`{timeout: 1h}`, `[{goto: a}]`, `[{title: a}]`, `2024-01-01`, `1e3`, `.inf`, `"1h1d"`}
	var keys []string
	for _, ks := range [][]string{flowKeys, triggerKeys, actionKeys, sendKeys, {"id", "next",
		"from", "to", "timezone", "ads", "text", "keywords", "pattern", "cron", "audience", "name",
		"title", "link", "caption", "filename", "body", "button", "header", "footer", "rows",
		"sections", "description", "url", "flow_id", "cta", "screen", "data", "mode", "flow_json", "for", "at", "timeout", "on_timeout", "if", "goto"}} {
		keys = append(keys, ks...)
	}
	judgedByParser := map[string]bool{"cron": true, "timezone": true}

	rng := rand.New(rand.NewSource(20260101))
	n := 1500
	if testing.Short() {
		n = 200
	}
	tried := 0
	for range n {
		var doc yaml.Node
		if err := yaml.Unmarshal(srcs[rng.Intn(len(srcs))], &doc); err != nil {
			t.Fatal(err)
		}
		// Every mapping, with the key it is the value of.
		type mapping struct {
			node  *yaml.Node
			under string
		}
		var maps []mapping
		var walk func(n *yaml.Node, under string)
		walk = func(n *yaml.Node, under string) {
			if n.Kind == yaml.MappingNode && len(n.Content) > 0 {
				maps = append(maps, mapping{n, under})
			}
			for i, c := range n.Content {
				if n.Kind == yaml.MappingNode && i%2 == 1 {
					walk(c, n.Content[i-1].Value)
				} else if n.Kind != yaml.MappingNode {
					walk(c, under)
				}
			}
		}
		walk(&doc, "")
		m := maps[rng.Intn(len(maps))]
		i := 2 * rng.Intn(len(m.node.Content)/2)
		key := m.node.Content[i].Value
		var what string
		switch rng.Intn(3) {
		case 0: // replace a value
			if judgedByParser[key] || m.under == "set" && rng.Intn(2) == 0 {
				continue
			}
			var repl yaml.Node
			v := values[rng.Intn(len(values))]
			if err := yaml.Unmarshal([]byte("v: "+v), &repl); err != nil {
				t.Fatal(err)
			}
			m.node.Content[i+1] = repl.Content[0].Content[1]
			what = fmt.Sprintf("`%s: %s`", key, v)
		case 1: // drop a key
			if key == "if" {
				continue
			}
			m.node.Content = slices.Delete(slices.Clone(m.node.Content), i, i+2)
			what = fmt.Sprintf("`%s` dropped", key)
		case 2: // rename a key
			k := keys[rng.Intn(len(keys))]
			if judgedByParser[k] || key == "if" {
				continue
			}
			m.node.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}
			what = fmt.Sprintf("`%s` renamed `%s`", key, k)
		}
		out, err := yaml.Marshal(&doc)
		if err != nil {
			t.Fatal(err)
		}
		tried++
		parser := schemaTestDiags("mutated.yaml", out)
		var schemaErr error
		if v, err := schemaTestJSON(out); err != nil {
			schemaErr = err
		} else {
			schemaErr = schemaTestSchema(t).Validate(v)
		}
		switch {
		case schemaErr != nil && len(parser) == 0:
			t.Errorf("%s: the schema refuses it, the parser does not:\n%s\n%v", what, out, schemaErr)
		case schemaErr == nil && len(parser) > 0:
			t.Errorf("%s: the parser refuses it (%v), the schema does not:\n%s", what, parser, out)
		}
	}
	t.Logf("%d mutated flows", tried)
}
