package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/store/postgres"
	"github.com/funnel-dev/funnel/store/sqlite"
)

// drivers are every driver built into the store, for tests that check their
// SQL side by side.
func drivers() []Driver { return []Driver{sqlite.Driver{}, postgres.Driver{}} }

// Every driver has the same named queries, taking the same number of
// arguments: the store runs any of them with the same Go code.
func TestQueriesAreTheSameInEveryDriver(t *testing.T) {
	var first map[string]*query
	var firstName string
	for _, d := range drivers() {
		qs, err := parseQueries(d.SQL(), d.Bind(), d.ArrayParams())
		if err != nil {
			t.Fatalf("%s: %v", d.Name(), err)
		}
		if first == nil {
			first, firstName = qs.byName, d.Name()
			continue
		}
		for name, q := range first {
			other, ok := qs.byName[name]
			switch {
			case !ok:
				t.Errorf("query %s is in the %s driver, not in %s", name, firstName, d.Name())
			case other.nargs != q.nargs:
				t.Errorf("query %s takes %d arguments in %s, %d in %s", name, q.nargs, firstName, other.nargs, d.Name())
			case other.bulk != q.bulk:
				t.Errorf("query %s is a multi-row insert in one driver only", name)
			}
		}
		for name := range qs.byName {
			if _, ok := first[name]; !ok {
				t.Errorf("query %s is in the %s driver, not in %s", name, d.Name(), firstName)
			}
		}
	}
}

// queryCalls are the store's functions whose string-literal arguments name
// queries.
var queryCalls = map[string]bool{"exec": true, "affected": true, "get": true, "getW": true, "execW": true,
	"selectR": true, "selectAll": true, "selectRows": true, "queryRows": true, "scanR": true, "bulk": true,
	"script": true, "sql": true, "rows": true, "upsertTemplate": true}

// Every query the Go code names exists, and every query in queries.sql is
// used by the Go code (a query left behind is SQL nobody tests).
func TestEveryQueryIsDefinedAndUsed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	literals := map[string]bool{}
	called := map[string]string{} // query name → where
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					if s, err := strconv.Unquote(n.Value); err == nil {
						literals[s] = true
					}
				}
			case *ast.CallExpr:
				fn := n.Fun
				if ix, ok := fn.(*ast.IndexExpr); ok {
					fn = ix.X
				}
				var id string
				switch f := fn.(type) {
				case *ast.Ident:
					id = f.Name
				case *ast.SelectorExpr:
					id = f.Sel.Name
				}
				if !queryCalls[id] {
					return true
				}
				for _, a := range n.Args {
					if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						called[s] = fset.Position(lit.Pos()).String()
						break
					}
				}
			}
			return true
		})
	}
	for _, d := range drivers() {
		qs, err := parseQueries(d.SQL(), d.Bind(), d.ArrayParams())
		if err != nil {
			t.Fatal(err)
		}
		var unused []string
		for name := range qs.byName {
			if !literals[name] {
				unused = append(unused, name)
			}
		}
		sort.Strings(unused)
		if len(unused) > 0 {
			t.Errorf("%s: queries never named by the store's Go code: %s", d.Name(), strings.Join(unused, ", "))
		}
		for name, where := range called {
			if _, ok := qs.byName[name]; !ok {
				t.Errorf("%s: %s names query %q, which %s's queries.sql does not define", where, d.Name(), name, d.Name())
			}
		}
	}
	if len(called) < 40 {
		t.Errorf("found %d query names in calls: the scan is broken", len(called))
	}
}

func TestQueryFileErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"-- name: A\nSELECT $1\n-- name: A\nSELECT 1\n", "queries.sql:3: query A defined twice"},
		{"-- name: A\n-- only a comment\n-- name: B\nSELECT 1\n", "queries.sql:1: query A has no SQL"},
		{"-- name: A\nSELECT ?\n", "write parameters $1"},
		{"-- name: A\nSELECT $2\n", "parameter $1 is never used"},
		{"-- name: A B\nSELECT 1\n", "queries.sql:1: a query name is one word"},
	} {
		_, err := parseQueryFile([]byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.src, err, c.want)
		}
	}
}

// Parameters are numbered in the file and may repeat; a list argument is
// spread over placeholders where the database has no arrays, one array
// parameter where it has; a one-row insert repeats its row.
func TestQueryRendering(t *testing.T) {
	src := []byte("-- name: Q\nSELECT a FROM t WHERE b = $2 AND c IN ($1) AND d = '$1' AND e = $2\n" +
		"-- name: Ins\nINSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO NOTHING\n")
	byName, err := parseQueryFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		bind            int
		arrays          bool
		wantQ, wantRows string
		wantArgs        int
	}{
		{1 /* sqlx.QUESTION */, false, "SELECT a FROM t WHERE b = ? AND c IN (?, ?, ?) AND d = '$1' AND e = ?",
			"INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING", 5},
		{2 /* sqlx.DOLLAR */, true, "SELECT a FROM t WHERE b = $2 AND c IN ($1) AND d = '$1' AND e = $2",
			"INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT (a) DO NOTHING", 2},
	} {
		qs := &queries{bind: c.bind, arrays: c.arrays, byName: byName, rendered: map[string]string{}}
		for _, q := range byName {
			q.plain = qs.render(q, nil)
		}
		text, args, err := qs.sql("Q", []any{[]int64{1, 2, 3}, "x"})
		if err != nil || strings.TrimSpace(text) != c.wantQ || len(args) != c.wantArgs {
			t.Errorf("bind %d: %q %v %v\nwant %q with %d args", c.bind, text, args, err, c.wantQ, c.wantArgs)
		}
		rows, err := qs.rows("Ins", 3)
		if err != nil || strings.TrimSpace(rows) != c.wantRows {
			t.Errorf("bind %d: %q %v\nwant %q", c.bind, rows, err, c.wantRows)
		}
		if _, _, err := qs.sql("Q", []any{1}); err == nil || !strings.Contains(err.Error(), "takes 2 arguments, got 1") {
			t.Errorf("wrong argument count: %v", err)
		}
		if _, _, err := qs.sql("Nope", nil); err == nil || !strings.Contains(err.Error(), "no query Nope") {
			t.Errorf("unknown query: %v", err)
		}
	}
}
