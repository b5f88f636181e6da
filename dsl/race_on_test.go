//go:build race

package dsl

// raceEnabled: the race detector slows code down 5-20x; time limits scale.
const raceEnabled = true
