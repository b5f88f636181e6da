// Package dsl is the funnel flow language: a typed model of flow files that keeps
// the source position of every value, the parser that builds it from yaml.v3 nodes,
// expressions compiled once with expr-lang against a typed environment, the
// template catalog, every static check (one rule per check_*.go file) and the
// output formats of their diagnostics.
//
// The compiled model is the single source of truth: the validator, the engine, the
// simulator and the renderers all read the same *Flow, so a step's meaning is never
// implemented twice.
package dsl
