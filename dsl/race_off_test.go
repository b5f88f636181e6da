//go:build !race

package dsl

const raceEnabled = false

// Referenced so the build without -race keeps the constant the -race build
// defines (staticcheck U1000), whichever test uses it.
var _ = raceEnabled
