package dsl

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Expr is an expression compiled once at load time; the engine runs Program.
type Expr struct {
	Src     string
	Pos     Pos
	Program *vm.Program

	// isConst is set for a boolean expression that reads nothing from the
	// environment (`true`, `1 < 2`): its value (constValue, false when it always
	// fails) is the same on every run.
	isConst, constValue bool
}

// Const reports whether a boolean expression has the same value on every run, and
// which (an expression that always fails counts as false, as at run time).
func (e *Expr) Const() (value, ok bool) {
	if e == nil {
		return false, false
	}
	return e.constValue, e.isConst
}

// foldConst evaluates a boolean expression that reads nothing from the
// environment, once, so the analyses can prune the branches it rules out.
func (e *Expr) foldConst() {
	if !readsNothing(e.Node()) {
		return
	}
	v, err := runSafely(e.Program)
	b, _ := v.(bool)
	e.isConst, e.constValue = true, err == nil && b
}

// readsNothing reports whether an expression tree is built from literals and
// operators only: no names (contact, reply, vars, now…), no function calls and no
// builtins that read the clock.
func readsNothing(n ast.Node) bool {
	ok := true
	ast.Walk(&n, constVisitor{&ok})
	return ok
}

type constVisitor struct{ ok *bool }

func (v constVisitor) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode, *ast.CallNode, *ast.PointerNode, *ast.PredicateNode, *ast.VariableDeclaratorNode:
		*v.ok = false
	case *ast.BuiltinNode:
		if x.Name == "now" || x.Name == "date" {
			*v.ok = false
		}
	}
}

func runSafely(p *vm.Program) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return expr.Run(p, &Env{Vars: map[string]any{}, Event: map[string]any{}})
}

// Eval runs the expression.
func (e *Expr) Eval(env *Env) (any, error) {
	return expr.Run(e.Program, env)
}

// Bool runs a boolean expression (if:, audience:). A runtime error (a nil variable,
// say) counts as false and is returned so the caller can log it.
func (e *Expr) Bool(env *Env) (bool, error) {
	v, err := expr.Run(e.Program, env)
	if err != nil {
		return false, err
	}
	b, _ := v.(bool)
	return b, nil
}

// Node is the expression's syntax tree, for static analyses.
func (e *Expr) Node() ast.Node { return e.Program.Node() }

type exprKind int

const (
	exprAny exprKind = iota
	exprBool
	exprNumber // a number (convert's value): int or float, converted to float64
)

type cacheKey struct {
	kind exprKind
	src  string
}

type cached struct {
	prog *vm.Program
	err  error
}

// programs caches compilations: the same expression (`contact.name`) recurs across
// hundreds of steps and files, and a compiled program is immutable.
// The cache is bounded: a daemon that reloads edited flows for months must not
// keep every expression it ever compiled; past maxPrograms it starts afresh.
var (
	programs      sync.Map
	programsCount atomic.Int64
)

const maxPrograms = 50_000

// compileExpr compiles src against Env. posAt maps a rune offset inside src to its
// source position, so errors point at the exact character.
func compileExpr(src string, kind exprKind, posAt func(int) Pos) (*Expr, *Diagnostic) {
	key := cacheKey{kind, src}
	var c cached
	if v, ok := programs.Load(key); ok {
		c = v.(cached)
	} else {
		opts := []expr.Option{expr.Env(Env{}), expr.MaxNodes(2000)}
		switch kind {
		case exprBool:
			opts = append(opts, expr.AsBool())
		case exprNumber:
			opts = append(opts, expr.AsFloat64())
		}
		c.prog, c.err = compileSafely(src, opts)
		if programsCount.Add(1) > maxPrograms {
			programs.Clear()
			programsCount.Store(1)
		}
		programs.Store(key, c)
	}
	if c.err != nil {
		off := 0
		msg := c.err.Error()
		var fe *file.Error
		if errors.As(c.err, &fe) {
			off = fe.From
			msg = fe.Message
		}
		message := "expression `" + src + "`: " + explainExprError(msg)
		if strings.TrimSpace(src) == "" {
			message = "empty expression"
		}
		d := &Diagnostic{Pos: posAt(off), Severity: SevError, Rule: RuleExpression,
			Message: message}
		return nil, d
	}
	e := &Expr{Src: src, Pos: posAt(0), Program: c.prog}
	if kind == exprBool {
		e.foldConst()
	}
	return e, nil
}

// compileSafely guards against panics inside the expression compiler: bad input gets
// a diagnostic, never a crash.
func compileSafely(src string, opts []expr.Option) (p *vm.Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("cannot compile: %v", r)
		}
	}()
	return expr.Compile(src, opts...)
}

var (
	reNoField     = regexp.MustCompile(`^type (\S+) has no field (\S+)$`)
	reUnknownName = regexp.MustCompile(`^unknown name (\S+)$`)
)

// explainExprError rewrites expr-lang's messages in the flow language's terms and
// adds the usual suggestion.
func explainExprError(msg string) string {
	if m := reNoField.FindStringSubmatch(msg); m != nil {
		owner, ok := envTypeNames[m[1]]
		if ok {
			fields := EnvFields(owner)
			return fmt.Sprintf("`%s` has no field `%s`%s (fields: %s)", owner, m[2], didYouMean(m[2], fields), strings.Join(fields, ", "))
		}
	}
	if m := reUnknownName.FindStringSubmatch(msg); m != nil {
		names := EnvNames()
		return fmt.Sprintf("unknown name `%s`%s (names: %s)", m[1], didYouMean(m[1], names), strings.Join(names, ", "))
	}
	for goName, name := range envTypeNames {
		msg = strings.ReplaceAll(msg, goName, name)
	}
	return msg
}

// RequiresOptIn reports whether a boolean expression can only be true for a contact
// who opted in: it is `contact.opted_in` (or `== true`), or a conjunction with it.
func RequiresOptIn(e *Expr) bool {
	if e == nil {
		return false
	}
	return requiresOptIn(e.Node())
}

func requiresOptIn(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.MemberNode:
		return isContactOptedIn(n)
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and":
			return requiresOptIn(n.Left) || requiresOptIn(n.Right)
		case "==":
			if b, ok := n.Right.(*ast.BoolNode); ok && b.Value {
				return requiresOptIn(n.Left)
			}
			if b, ok := n.Left.(*ast.BoolNode); ok && b.Value {
				return requiresOptIn(n.Right)
			}
		}
	}
	return false
}

func isContactOptedIn(n *ast.MemberNode) bool { return isContactField(n, "opted_in") }

func isContactField(n ast.Node, field string) bool {
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "contact" {
		return false
	}
	p, ok := m.Property.(*ast.StringNode)
	return ok && p.Value == field
}

// RequiresPhone reports whether a boolean expression can only be true for a
// contact whose phone number is known: `contact.has_phone` (or `== true`),
// `contact.wa_id != ""`, or a conjunction with one of them.
func RequiresPhone(e *Expr) bool {
	if e == nil {
		return false
	}
	return requiresPhone(e.Node())
}

func requiresPhone(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.MemberNode:
		return isContactField(n, "has_phone")
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and":
			return requiresPhone(n.Left) || requiresPhone(n.Right)
		case "==":
			if b, ok := n.Right.(*ast.BoolNode); ok && b.Value {
				return requiresPhone(n.Left)
			}
			if b, ok := n.Left.(*ast.BoolNode); ok && b.Value {
				return requiresPhone(n.Right)
			}
		case "!=":
			if s, ok := n.Right.(*ast.StringNode); ok && s.Value == "" {
				return isContactField(n.Left, "wa_id")
			}
			if s, ok := n.Left.(*ast.StringNode); ok && s.Value == "" {
				return isContactField(n.Right, "wa_id")
			}
		}
	}
	return false
}
