package dsl

import _ "embed"

//go:embed schema.json
var jsonSchema []byte

// JSONSchema returns the JSON Schema (draft-07) of flow files, for editors: with
// it, a YAML language server completes keys, shows what each one means on hover
// and flags unknown keys, wrong types and malformed ids, durations and times of
// day while the flow is being written. It describes exactly the shapes ParseFlow
// accepts (schema_test.go holds the two in agreement); what needs the whole
// project (references, templates, the 24-hour window) is left to `funnel
// validate`.
//
// YAML merge keys (`<<: *base`) are not modelled as properties: the schema
// describes each mapping after its merge keys are applied, as funnel and
// yaml-language-server read it.
//
// The returned slice is a copy; callers may keep or change it.
func JSONSchema() []byte { return append([]byte(nil), jsonSchema...) }
