package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The status lists (used by `funnel runs --status`, `funnel outbox --status` and
// their completion) name every status constant: a new status cannot be forgotten.
func TestStatusListsAreComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "model.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string][]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				for _, prefix := range []string{"Run", "Out"} {
					if strings.HasPrefix(name.Name, prefix) {
						consts[prefix] = append(consts[prefix], v)
					}
				}
			}
		}
	}
	for prefix, list := range map[string][]string{"Run": RunStatuses, "Out": OutboxStatuses} {
		want := slices.Sorted(slices.Values(consts[prefix]))
		got := slices.Sorted(slices.Values(list))
		if !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("%s statuses: list has %v, constants are %v", prefix, got, want)
		}
	}
}
