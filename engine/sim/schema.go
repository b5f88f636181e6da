package sim

import _ "embed"

//go:embed schema.json
var jsonSchema []byte

// JSONSchema returns the JSON Schema (draft-07) of conversation scripts
// (*.test.yaml), for editors: `funnel schema --tests` prints it. It describes
// what ParseScript accepts (schema_test.go checks the shipped scripts and a table
// of wrong ones against both). The returned slice is a copy.
func JSONSchema() []byte { return append([]byte(nil), jsonSchema...) }
