package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
)

// A driver's queries.sql is a list of named queries:
//
//	-- name: PendingInbox
//	-- what it does, its arguments
//	SELECT … WHERE processed_at IS NULL ORDER BY id LIMIT $1
//
// Parameters are numbered ($1, $2, …, PostgreSQL's style, in both drivers) and
// may repeat; a query takes the same arguments in every driver. An argument
// that is a list ([]int64, []string) is one array parameter where the
// database has them (PostgreSQL: `= ANY($1)`), else spread over one
// placeholder per value (SQLite: `IN ($1)`). A multi-row insert is written
// with one row (`VALUES ($1, $2, …)`, its parameters in order and no other):
// Tx.bulk repeats the row.

// query is a parsed named query.
type query struct {
	name  string
	parts []string // the text around the placeholders: len(parts) == len(order)+1
	order []int    // the argument of each placeholder, 0-based
	nargs int
	bulk  bool // parts[1:len(order)] is one row of a VALUES list (see rows)
	plain string
}

// queries are a driver's parsed queries, rendered for that driver.
type queries struct {
	bind     int
	arrays   bool
	byName   map[string]*query
	mu       sync.Mutex
	rendered map[string]string // list/row expansions by name and sizes
}

// parseQueries reads queries.sql from a driver's files.
func parseQueries(fsys fs.FS, bind int, arrays bool) (*queries, error) {
	src, err := fs.ReadFile(fsys, "queries.sql")
	if err != nil {
		return nil, err
	}
	byName, err := parseQueryFile(src)
	if err != nil {
		return nil, err
	}
	qs := &queries{bind: bind, arrays: arrays, byName: byName, rendered: map[string]string{}}
	for _, q := range byName {
		q.plain = qs.render(q, nil)
	}
	return qs, nil
}

// parseQueryFile splits a queries file into its named queries.
func parseQueryFile(src []byte) (map[string]*query, error) {
	out := map[string]*query{}
	var name string
	var start int
	var body strings.Builder
	flush := func() error {
		if name == "" {
			return nil
		}
		text := strings.TrimSpace(body.String())
		if text == "" {
			return fmt.Errorf("queries.sql:%d: query %s has no SQL", start, name)
		}
		q, err := compileQuery(name, text)
		if err != nil {
			return fmt.Errorf("queries.sql:%d: %w", start, err)
		}
		out[name] = q
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(trimmed, "-- name:"); ok {
			if err := flush(); err != nil {
				return nil, err
			}
			name, start = strings.TrimSpace(rest), n
			body.Reset()
			if name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("queries.sql:%d: a query name is one word", n)
			}
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("queries.sql:%d: query %s defined twice", n, name)
			}
			continue
		}
		if strings.HasPrefix(trimmed, "--") || name == "" {
			continue // comments are for readers, not sent
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// compileQuery finds the $n parameters (outside string literals and after a
// '::' cast they cannot occur) and splits the text around them.
func compileQuery(name, text string) (*query, error) {
	q := &query{name: name}
	var b strings.Builder
	inString := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\'':
			inString = !inString
			b.WriteByte(c)
		case inString:
			b.WriteByte(c)
		case c == '?':
			return nil, fmt.Errorf("query %s: write parameters $1, $2, … (not ?)", name)
		case c == '$' && i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9':
			j := i + 1
			for j < len(text) && text[j] >= '0' && text[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(text[i+1 : j])
			if n < 1 {
				return nil, fmt.Errorf("query %s: parameter $%d", name, n)
			}
			q.parts = append(q.parts, b.String())
			b.Reset()
			q.order = append(q.order, n-1)
			q.nargs = max(q.nargs, n)
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	q.parts = append(q.parts, b.String())
	for i := range q.nargs {
		found := false
		for _, k := range q.order {
			found = found || k == i
		}
		if !found {
			return nil, fmt.Errorf("query %s: parameter $%d is never used", name, i+1)
		}
	}
	// A multi-row insert: its VALUES row holds every parameter, in order.
	if i := strings.LastIndex(strings.ToUpper(q.parts[0]), "VALUES"); i >= 0 && len(q.order) > 0 &&
		strings.TrimSpace(q.parts[0][i+len("VALUES"):]) == "(" {
		q.bulk = true
		for k, a := range q.order {
			if a != k {
				q.bulk = false
			}
		}
		for _, p := range q.parts[1 : len(q.parts)-1] {
			if strings.TrimSpace(p) != "," {
				q.bulk = false
			}
		}
		if !strings.HasPrefix(strings.TrimSpace(q.parts[len(q.parts)-1]), ")") {
			q.bulk = false
		}
	}
	return q, nil
}

// placeholder writes the driver's k-th placeholder (0-based).
func (qs *queries) placeholder(b *strings.Builder, k int) {
	if qs.bind == sqlx.DOLLAR {
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(k + 1))
		return
	}
	b.WriteByte('?')
}

// listLen is the length of a list argument, -1 for a single value.
func listLen(a any) int {
	switch v := a.(type) {
	case []int64:
		return len(v)
	case []string:
		return len(v)
	}
	return -1
}

// render writes q for the driver; lens, when set, are the lengths of the list
// arguments spread over one placeholder per value (-1: a single value). A
// driver with array parameters takes the query's own numbering ($n is
// argument n); otherwise placeholders follow the order of the arguments sql
// passes (repeated ones repeated).
func (qs *queries) render(q *query, lens []int) string {
	var b strings.Builder
	if qs.arrays {
		for i, part := range q.parts {
			b.WriteString(part)
			if i < len(q.order) {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(q.order[i] + 1))
			}
		}
		return b.String()
	}
	k := 0
	for i, part := range q.parts {
		b.WriteString(part)
		if i == len(q.order) {
			break
		}
		n := -1
		if lens != nil {
			n = lens[q.order[i]]
		}
		if n < 0 {
			qs.placeholder(&b, k)
			k++
			continue
		}
		for j := range n {
			if j > 0 {
				b.WriteString(", ")
			}
			qs.placeholder(&b, k)
			k++
		}
	}
	return b.String()
}

// sql returns the text and arguments of a named query for the driver.
func (qs *queries) sql(name string, args []any) (string, []any, error) {
	q, ok := qs.byName[name]
	if !ok {
		return "", nil, fmt.Errorf("store: no query %s in this driver's queries.sql", name)
	}
	if len(args) != q.nargs {
		return "", nil, fmt.Errorf("store: query %s takes %d arguments, got %d", name, q.nargs, len(args))
	}
	if qs.arrays {
		return q.plain, args, nil
	}
	var lens []int
	{
		for i, a := range args {
			if n := listLen(a); n >= 0 {
				if lens == nil {
					lens = make([]int, len(args))
					for j := range lens {
						lens[j] = -1
					}
				}
				lens[i] = n
			}
		}
	}
	out := make([]any, 0, len(q.order))
	for _, k := range q.order {
		if lens != nil && lens[k] >= 0 {
			out = appendList(out, args[k])
			continue
		}
		out = append(out, args[k])
	}
	if lens == nil {
		return q.plain, out, nil
	}
	key := fmt.Sprint(name, lens)
	qs.mu.Lock()
	text, ok := qs.rendered[key]
	qs.mu.Unlock()
	if !ok {
		text = qs.render(q, lens)
		qs.mu.Lock()
		qs.rendered[key] = text
		qs.mu.Unlock()
	}
	return text, out, nil
}

func appendList(out []any, list any) []any {
	switch v := list.(type) {
	case []int64:
		for _, x := range v {
			out = append(out, x)
		}
	case []string:
		for _, x := range v {
			out = append(out, x)
		}
	}
	return out
}

// rows returns the text of a multi-row insert of n rows.
func (qs *queries) rows(name string, n int) (string, error) {
	q, ok := qs.byName[name]
	if !ok {
		return "", fmt.Errorf("store: no query %s in this driver's queries.sql", name)
	}
	if !q.bulk {
		return "", fmt.Errorf("store: query %s is not a one-row VALUES insert", name)
	}
	key := name + "/" + strconv.Itoa(n)
	qs.mu.Lock()
	text, ok := qs.rendered[key]
	qs.mu.Unlock()
	if ok {
		return text, nil
	}
	var b strings.Builder
	b.WriteString(q.parts[0])
	k := 0
	last := len(q.parts) - 1
	for r := range n {
		if r > 0 {
			b.WriteString("), (")
		}
		for i := range q.order {
			if i > 0 {
				b.WriteString(q.parts[i])
			}
			qs.placeholder(&b, k)
			k++
		}
	}
	b.WriteString(q.parts[last])
	text = b.String()
	qs.mu.Lock()
	qs.rendered[key] = text
	qs.mu.Unlock()
	return text, nil
}
