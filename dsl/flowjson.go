package dsl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// maxFlowJSON bounds the Flow JSON file a form names: Meta's Flows are small,
// and the validator must not read an arbitrary file whole.
const maxFlowJSON = 1 << 20

// formRef is `${form.<name>}` in a complete action's payload: the value the
// contact entered in the component of that name.
var formRef = regexp.MustCompile(`^\$\{form\.([A-Za-z0-9_]+)\}$`)

// componentTypes is the type of the value each Flow JSON input component
// returns in the completed form's response_json.
var componentTypes = map[string]string{
	"TextInput": "string", "TextArea": "string", "DatePicker": "string", "CalendarPicker": "string",
	"RadioButtonsGroup": "string", "Dropdown": "string",
	"CheckboxGroup": "list", "ChipsSelector": "list", "PhotoPicker": "list", "DocumentPicker": "list",
	"OptIn": "boolean",
}

// loadFormSchemas reads the Flow JSON of every form of f that names one
// (relative to the flow file) and checks the form's screen against it.
func loadFormSchemas(f *Flow) []Diagnostic {
	var diags []Diagnostic
	report := func(s *Step, pos Pos, format string, args ...any) {
		diags = append(diags, Diagnostic{Pos: pos, Severity: SevError, Rule: RuleForm, Message: fmt.Sprintf(format, args...),
			Flow: f.ID, Step: s.ID})
	}
	for _, s := range f.Steps {
		if s.Send == nil || s.Send.Form == nil || s.Send.Form.FlowJSON == "" {
			continue
		}
		form := s.Send.Form
		path := form.FlowJSON
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(f.File), path)
		}
		schema, err := ReadFlowJSON(path)
		if errors.Is(err, fs.ErrNotExist) {
			report(s, form.FlowJSONPos, "the form's `flow_json` %s does not exist (looked for %s)", form.FlowJSON, filepath.ToSlash(path))
			continue
		}
		if err != nil {
			report(s, form.FlowJSONPos, "the form's `flow_json` %s: %v", form.FlowJSON, err)
			continue
		}
		form.Schema = schema
		if form.Screen != "" && !contains(schema.Screens, form.Screen) {
			report(s, form.ScreenPos, "the Flow JSON %s has no screen `%s`%s (screens: %s)", form.FlowJSON, form.Screen,
				didYouMean(form.Screen, schema.Screens), strings.Join(schema.Screens, ", "))
		}
	}
	return diags
}

// ReadFlowJSON reads a WhatsApp Flow JSON file: its screens, and the fields
// its `complete` actions return, typed by the component that fills each one.
func ReadFlowJSON(path string) (*FormSchema, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFlowJSON {
		return nil, fmt.Errorf("%s is %d bytes; a Flow JSON of more than %d is not read", path, fi.Size(), maxFlowJSON)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFlowJSON(data)
}

// ParseFlowJSON reads a Flow JSON document (see ReadFlowJSON).
func ParseFlowJSON(data []byte) (*FormSchema, error) {
	var doc struct {
		Screens []json.RawMessage `json:"screens"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a Flow JSON: %v", err)
	}
	if len(doc.Screens) == 0 {
		return nil, fmt.Errorf("not a Flow JSON: no `screens`")
	}
	s := &FormSchema{Fields: map[string]FormField{}}
	type component struct{ typ, label string }
	components := map[string]component{}
	var payloads []map[string]any
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 64 {
			return
		}
		switch v := v.(type) {
		case map[string]any:
			if typ, ok := v["type"].(string); ok {
				if name, ok := v["name"].(string); ok {
					label, _ := v["label"].(string)
					components[name] = component{typ, label}
				}
			}
			if a, ok := v["on-click-action"].(map[string]any); ok && a["name"] == "complete" {
				if p, ok := a["payload"].(map[string]any); ok {
					payloads = append(payloads, p)
				}
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(v[k], depth+1)
			}
		case []any:
			for _, x := range v {
				walk(x, depth+1)
			}
		}
	}
	for i, raw := range doc.Screens {
		var screen map[string]any
		if err := json.Unmarshal(raw, &screen); err != nil {
			return nil, fmt.Errorf("not a Flow JSON: screen %d: %v", i+1, err)
		}
		id, _ := screen["id"].(string)
		if id == "" {
			return nil, fmt.Errorf("not a Flow JSON: screen %d has no `id`", i+1)
		}
		s.Screens = append(s.Screens, id)
		walk(screen, 0)
	}
	for _, p := range payloads {
		for name, v := range p {
			f := FormField{Name: name, Type: "any"}
			switch v := v.(type) {
			case string:
				if m := formRef.FindStringSubmatch(v); m != nil {
					if c, ok := components[m[1]]; ok {
						f.Input, f.Label = c.typ, c.label
						if t, ok := componentTypes[c.typ]; ok {
							f.Type = t
						}
					}
				} else if !strings.Contains(v, "${") {
					f.Type, f.Value = "string", v
				}
			case float64:
				f.Type, f.Value = "number", v
			case bool:
				f.Type, f.Value = "boolean", v
			case []any:
				f.Type, f.Value = "list", v
			}
			if old, ok := s.Fields[name]; ok && old.Type != f.Type {
				f.Type = "any" // two completions return it with different types
			}
			s.Fields[name] = f
		}
	}
	return s, nil
}
