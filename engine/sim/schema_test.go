package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

func compileScriptSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("test.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("test.schema.json")
	if err != nil {
		t.Fatalf("the script schema does not compile: %v", err)
	}
	return s
}

// yamlToJSON is the value an editor's YAML language server checks: timestamps
// stay text, mapping keys are strings.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = conv(e)
			}
			return x
		case map[any]any:
			m := map[string]any{}
			for k, e := range x {
				m[fmt.Sprint(k)] = conv(e)
			}
			return m
		case []any:
			for i, e := range x {
				x[i] = conv(e)
			}
			return x
		case time.Time:
			return x.Format(time.RFC3339Nano)
		}
		return v
	}
	b, err := json.Marshal(conv(v))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every shipped script is valid for the schema (and for the parser).
func TestScriptSchemaAcceptsShippedScripts(t *testing.T) {
	schema := compileScriptSchema(t)
	files, err := FindScripts([]string{"../../flows", "../../testdata/conversations"})
	if err != nil || len(files) < 10 {
		t.Fatalf("found %d scripts: %v", len(files), err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(yamlToJSON(t, data)); err != nil {
			t.Errorf("%s: the schema refuses a shipped script: %v", f, err)
		}
		if _, err := ParseScript(f, data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Wrong scripts are refused by the schema and by the parser alike.
func TestScriptSchemaRejects(t *testing.T) {
	schema := compileScriptSchema(t)
	ok := "contact: {wa_id: \"16505551234\", name: Ana, timezone: Europe/Lisbon, tags: [vip], opted_in: true, attributes: {city: Porto}}\n" +
		"start: 2026-07-01T20:30:00Z\nflows: [a.yaml]\ntemplates: templates.json\nevents:\n" +
		"  - inbound: hi\n" +
		"  - inbound: {text: hi, referral: {source_id: \"120226305854810999\", headline: Sandals}, delay: 25h}\n" +
		"  - inbound: {interactive: {id: hours}}\n" +
		"  - inbound: {button: Get my code}\n" +
		"  - advance: 1d12h\n  - advance: 90m\n  - advance: 1h30m\n" +
		"  - event: {name: order_shipped, payload: {order_id: A-1}}\n" +
		"  - expect: {sent: [{template: t, type: template, status: window_closed, text_contains: x}]}\n" +
		"  - expect: {nothing_sent: true}\n"
	if err := schema.Validate(yamlToJSON(t, []byte(ok))); err != nil {
		t.Fatalf("a script using every key is refused: %v", err)
	}
	if _, err := ParseScript("ok.test.yaml", []byte(ok)); err != nil {
		t.Fatalf("parser: %v", err)
	}
	for _, bad := range []string{
		"flows: [a.yaml]\n", // no events
		"events: []\nfollow: a.yaml\n",
		"events: []\nstart: tomorrow\n",
		"events: []\ncontact: {wa_id: \"1\", nick: x}\n",
		"events: []\ncontact: {wa_id: \"+1 555\"}\n",
		"events:\n  - wait: 1h\n",
		"events:\n  - inbound: {txt: hi}\n",
		"events:\n  - inbound: {}\n",
		"events:\n  - inbound: {delay: 1h}\n",
		"events:\n  - inbound: {text: hi, delay: soon}\n",
		"events:\n  - inbound: {interactive: {id: a, name: b}}\n",
		"events:\n  - advance: soon\n",
		"events:\n  - advance: 0s\n",
		"events:\n  - event: {payload: {a: 1}}\n",
		"events:\n  - event: {name: x, data: {}}\n",
		"events:\n  - expect: {sent: [{txt: a}]}\n",
		"events:\n  - expect: {sent: [{type: templat}]}\n",
		"events:\n  - expect: {sent: [{status: delivered}]}\n",
		"events:\n  - expect: {nothing: true}\n",
		"events:\n  - inbound: hi\n    advance: 1h\n", // two events in one item
		"- a\n",
	} {
		if err := schema.Validate(yamlToJSON(t, []byte(bad))); err == nil {
			t.Errorf("the schema accepts:\n%s", bad)
		}
		if _, err := ParseScript("bad.test.yaml", []byte(bad)); err == nil {
			t.Errorf("the parser accepts:\n%s", bad)
		}
	}
}

// The schema printed by `funnel schema --tests` is the documented one: the
// modeline in docs/TESTING.md points at it.
func TestScriptSchemaIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "TESTING.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"funnel schema --tests", "yaml-language-server: $schema=", "`inbound`", "`advance`", "`event`", "`expect`", "`nothing_sent`", "`button`", "`interactive`", "`delay`"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/TESTING.md does not mention %s", want)
		}
	}
}
