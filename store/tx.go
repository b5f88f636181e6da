package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// maxRows bounds the rows of one multi-row statement (SQLite's variable limit is
// 32766; this keeps statements small enough to cache).
const maxRows = 256

type dbTx struct {
	s        *DB
	tx       *sqlx.Tx
	ctx      context.Context
	stmts    map[string]*sql.Stmt // used in this transaction, reused by its chunks
	uncached []string             // prepared here; the store caches them after the commit
	err      error                // a failure no method could return (NewID): fails the commit
	ids      map[string][]int64   // ids allocated from a sequence, not handed out yet
	idBlock  map[string]int       // the size of the last block of ids asked per table
}

func (t *dbTx) closeStmts() {
	for _, st := range t.stmts {
		st.Close()
	}
}

// NewID allocates an id in a table (runs, timers, outbox, flow_versions). A
// SingleWriter driver counts from the maximum read at open (one process
// writes: the lock file); any other asks the database's sequence, so
// processes sharing it never hand out the same id. It asks for a block at a
// time (8, then twice as many each time the transaction needs more, up to
// maxRows), kept for this transaction only: ids still follow the order in
// which transactions asked for them. A rolled-back transaction, or a block
// not used up, only leaves a gap.
func (t *dbTx) NewID(table string) int64 {
	if c, ok := t.s.nextID[table]; ok {
		return c.Add(1)
	}
	if ids := t.ids[table]; len(ids) > 0 {
		t.ids[table] = ids[1:]
		return ids[0]
	}
	if t.ids == nil {
		t.ids, t.idBlock = map[string][]int64{}, map[string]int{}
	}
	n := min(max(8, 2*t.idBlock[table]), maxRows)
	t.idBlock[table] = n
	rows, err := selectAll[idOnly](t, idQueries[table], n)
	if err == nil && len(rows) == 0 {
		err = fmt.Errorf("no id returned")
	}
	if err != nil {
		if t.err == nil {
			t.err = fmt.Errorf("new id in %s: %w", table, err)
		}
		return 0
	}
	ids := idList(rows)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	t.ids[table] = ids[1:]
	return ids[0]
}

// stmt returns the statement for query in this transaction: on a SingleWriter
// driver the store's cached one when there is one, else prepared here (and
// cached after the commit). Other drivers prepare and cache statements per
// connection themselves (pgx).
func (t *dbTx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if parent := t.s.cachedStmt(query); parent != nil {
		st = t.tx.StmtContext(t.ctx, parent)
	} else {
		var err error
		if st, err = t.tx.PrepareContext(t.ctx, query); err != nil {
			return nil, err
		}
		if t.s.drv.SingleWriter() {
			t.uncached = append(t.uncached, query)
		}
	}
	t.stmts[query] = st
	return st, nil
}

// execText runs a statement: prepared once per transaction (a batch reuses it
// for every chunk of rows), and on a SingleWriter driver kept for later
// transactions.
func (t *dbTx) execText(query string, args ...any) (sql.Result, error) {
	if t.err != nil {
		return nil, t.err
	}
	if !t.s.drv.SingleWriter() {
		res, err := t.tx.ExecContext(t.ctx, query, args...)
		if err != nil {
			// The database ended the transaction: every later statement and
			// the commit fail with this error rather than a vaguer one.
			t.err = t.s.classify(err)
			return nil, t.err
		}
		return res, nil
	}
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	res, err := st.ExecContext(t.ctx, args...)
	return res, t.s.classify(err)
}

// exec runs a named statement.
func (t *dbTx) exec(name string, args ...any) (sql.Result, error) {
	q, a, err := t.s.q.sql(name, args)
	if err != nil {
		return nil, err
	}
	return t.execText(q, a...)
}

// affected runs a named statement and returns how many rows it changed.
func (t *dbTx) affected(name string, args ...any) (int, error) {
	res, err := t.exec(name, args...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// queryRows runs a named query.
func (t *dbTx) queryRows(name string, args ...any) (*sql.Rows, error) {
	if t.err != nil {
		return nil, t.err
	}
	q, a, err := t.s.q.sql(name, args)
	if err != nil {
		return nil, err
	}
	if !t.s.drv.SingleWriter() {
		return t.tx.QueryContext(t.ctx, q, a...)
	}
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, a...)
}

// get reads one row of a named query into dest (a value or a db-tagged
// struct); sql.ErrNoRows when there is none.
func (t *dbTx) get(dest any, name string, args ...any) error {
	q, a, err := t.s.q.sql(name, args)
	if err != nil {
		return err
	}
	return t.tx.GetContext(t.ctx, dest, q, a...)
}

// selectRows runs a named query and scans every row into dest (a pointer to a
// slice of db-tagged structs or of values).
func (t *dbTx) selectRows(dest any, name string, args ...any) error {
	rows, err := t.queryRows(name, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := sqlx.StructScan(rows, dest); err != nil {
		return err
	}
	return rows.Err()
}

// rowPtr is a row struct that lists its fields' addresses in column order.
type rowPtr[R any] interface {
	*R
	ptrs() []any
}

// selectAll runs a named query and scans every row with rows.Scan (no
// reflection: these are the hot reads of every batch).
func selectAll[R any, P rowPtr[R]](t *dbTx, name string, args ...any) ([]R, error) {
	rows, err := t.queryRows(name, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []R
	var r R
	dst := P(&r).ptrs()
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// chunkRows is the row count of the next multi-row statement for n remaining
// rows: maxRows, then powers of two, so statement texts (and the cache) stay few.
func chunkRows(n int) int {
	if n >= maxRows {
		return maxRows
	}
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// bulk runs the named one-row insert over n rows, in multi-row statements of
// chunkRows rows; row appends the args of row i.
func (t *dbTx) bulk(name string, cols int, n int, row func(i int, args []any) ([]any, error)) (int64, error) {
	var total int64
	args := make([]any, 0, min(n, maxRows)*cols)
	for start := 0; start < n; {
		end := start + chunkRows(n-start)
		args = args[:0]
		for i := start; i < end; i++ {
			var err error
			if args, err = row(i, args); err != nil {
				return total, err
			}
		}
		q, err := t.s.q.rows(name, end-start)
		if err != nil {
			return total, err
		}
		res, err := t.execText(q, args...)
		if err != nil {
			return total, err
		}
		k, _ := res.RowsAffected()
		total += k
		start = end
	}
	return total, nil
}

// chunked calls fn on slices of at most maxRows values, for IN (…) lists. A
// shorter last slice is padded to a power of two by repeating its last value
// (harmless in IN), so the statement texts (and the cache) stay few.
func chunked[T any](xs []T, fn func([]T) error) error {
	for start := 0; start < len(xs); start += maxRows {
		c := xs[start:min(start+maxRows, len(xs))]
		if p := padTo(len(c)); p > len(c) {
			padded := make([]T, p)
			n := copy(padded, c)
			for i := n; i < p; i++ {
				padded[i] = c[n-1]
			}
			c = padded
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// padTo is the smallest power of two ≥ n (n ≤ maxRows).
func padTo(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// ErrInvalid marks a write refused because of the data it carries (a value JSON
// cannot encode, a constraint the row breaks), not because of the database: the
// same write fails the same way every time, so retrying it is pointless and
// the caller must set the culprit aside.
var ErrInvalid = errors.New("value cannot be stored")

// encodeJSON encodes v for a JSON column; a value JSON cannot represent (+Inf,
// NaN, a channel) is an ErrInvalid naming what it was for.
func encodeJSON(what string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	return b, nil
}

var (
	emptyObject = []byte("{}")
	emptyArray  = []byte("[]")
)

// jsonObject encodes a map; an empty one is "{}" without the encoder.
func jsonObject(what string, m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return emptyObject, nil
	}
	return encodeJSON(what, m)
}

// jsonArray encodes a list of strings; an empty one is "[]" without the encoder.
func jsonArray(xs []string) []byte {
	if len(xs) == 0 {
		return emptyArray
	}
	b, _ := json.Marshal(xs) // strings always encode
	return b
}

func rawOrEmpty(r json.RawMessage) []byte {
	if len(r) == 0 {
		return []byte("{}")
	}
	return r
}

// ---- inbox ----

type inboxRow struct {
	ID          int64         `db:"id"`
	Key         string        `db:"key"`
	Kind        string        `db:"kind"`
	Contact     string        `db:"contact"`
	Payload     []byte        `db:"payload"`
	ReceivedAt  int64         `db:"received_at"`
	ProcessedAt sql.NullInt64 `db:"processed_at"`
	Result      string        `db:"result"`
}

func (r *inboxRow) ptrs() []any {
	return []any{&r.ID, &r.Key, &r.Kind, &r.Contact, &r.Payload, &r.ReceivedAt, &r.ProcessedAt, &r.Result}
}

func (r inboxRow) item() *InboxItem {
	return &InboxItem{ID: r.ID, Key: r.Key, Kind: r.Kind, Contact: r.Contact, Payload: r.Payload,
		ReceivedAt: time.UnixMilli(r.ReceivedAt).UTC(), ProcessedAt: fromMS(r.ProcessedAt), Result: r.Result}
}

func (t *dbTx) insertInbox(items []InboxItem) (int, error) {
	n, err := t.bulk("InsertInbox", 5, len(items),
		func(i int, a []any) ([]any, error) {
			it := items[i]
			return append(a, it.Key, it.Kind, it.Contact, it.Payload, ms(it.ReceivedAt)), nil
		})
	return int(n), err
}

func (t *dbTx) EnqueueInbox(items []InboxItem) (int, error) { return t.insertInbox(items) }

func (t *dbTx) PendingInbox(limit int) ([]*InboxItem, error) {
	rows, err := selectAll[inboxRow](t, "PendingInbox", limit)
	out := make([]*InboxItem, len(rows))
	for i, r := range rows {
		out[i] = r.item()
	}
	return out, err
}

func (t *dbTx) MarkProcessed(items []*InboxItem, at time.Time) error {
	// Most results are empty; group by result to keep statements few.
	byResult := map[string][]int64{}
	for _, it := range items {
		byResult[it.Result] = append(byResult[it.Result], it.ID)
	}
	for result, ids := range byResult {
		err := chunked(ids, func(ids []int64) error {
			_, err := t.exec("MarkProcessed", ms(at), result, ids)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- contacts ----

type contactRow struct {
	WaID          string        `db:"wa_id"`
	Name          string        `db:"name"`
	Timezone      string        `db:"timezone"`
	Attributes    []byte        `db:"attributes"`
	Tags          []byte        `db:"tags"`
	PhoneNumberID string        `db:"phone_number_id"`
	LastInboundAt sql.NullInt64 `db:"last_inbound_at"`
	Consent       string        `db:"consent"`
	ConsentAt     sql.NullInt64 `db:"consent_at"`
	ConsentSource string        `db:"consent_source"`
	CreatedAt     int64         `db:"created_at"`
	UpdatedAt     int64         `db:"updated_at"`
	Phone         string        `db:"phone"`
	UserID        string        `db:"user_id"`
	ParentUserID  string        `db:"parent_user_id"`
	Username      string        `db:"username"`
}

func (r *contactRow) ptrs() []any {
	return []any{&r.WaID, &r.Name, &r.Timezone, &r.Attributes, &r.Tags, &r.PhoneNumberID, &r.LastInboundAt,
		&r.Consent, &r.ConsentAt, &r.ConsentSource, &r.CreatedAt, &r.UpdatedAt, &r.Phone, &r.UserID, &r.ParentUserID, &r.Username}
}

func (r contactRow) contact() *Contact {
	c := &Contact{WaID: r.WaID, Name: r.Name, Timezone: r.Timezone, PhoneNumberID: r.PhoneNumberID,
		LastInboundAt: fromMS(r.LastInboundAt), Consent: r.Consent, ConsentAt: fromMS(r.ConsentAt),
		ConsentSource: r.ConsentSource, CreatedAt: time.UnixMilli(r.CreatedAt).UTC(), UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC(),
		Phone: r.Phone, UserID: r.UserID, ParentUserID: r.ParentUserID, Username: r.Username}
	// Most contacts have no attributes or tags: skip the decoder for those.
	if string(r.Attributes) != "{}" {
		_ = json.Unmarshal(r.Attributes, &c.Attributes)
	}
	if string(r.Tags) == "[]" {
		c.Tags = []string{}
	} else {
		_ = json.Unmarshal(r.Tags, &c.Tags)
	}
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	return c
}

func (t *dbTx) Contacts(waIDs []string) (map[string]*Contact, error) {
	out := make(map[string]*Contact, len(waIDs))
	err := chunked(waIDs, func(ids []string) error {
		rows, err := selectAll[contactRow](t, "Contacts", ids)
		if err != nil {
			return err
		}
		for _, r := range rows {
			out[r.WaID] = r.contact()
		}
		return nil
	})
	return out, err
}

func (t *dbTx) ContactsPage(after string, limit int) ([]*Contact, error) {
	rows, err := selectAll[contactRow](t, "ContactsPage", after, limit)
	out := make([]*Contact, len(rows))
	for i, r := range rows {
		out[i] = r.contact()
	}
	return out, err
}

func (t *dbTx) SaveContacts(cs []*Contact) error {
	_, err := t.bulk("SaveContacts", 16, len(cs),
		func(i int, a []any) ([]any, error) {
			c := cs[i]
			attrs, err := jsonObject("attributes of contact "+c.WaID, c.Attributes)
			if err != nil {
				return a, err
			}
			return append(a, c.WaID, c.Name, c.Timezone, attrs, jsonArray(c.Tags), c.PhoneNumberID,
				nullMS(c.LastInboundAt), c.Consent, nullMS(c.ConsentAt), c.ConsentSource, ms(c.CreatedAt), ms(c.UpdatedAt),
				c.Phone, c.UserID, c.ParentUserID, c.Username), nil
		})
	return err
}

// ContactIDs resolves WhatsApp ids (phone numbers, BSUIDs, parent BSUIDs) to
// the keys of the contacts they belong to; unknown ids are absent. A contact
// saved without its ids (by an older version, or directly) is still found by
// its key; a linked id wins over a key.
func (t *dbTx) ContactIDs(ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	err := chunked(ids, func(ids []string) error {
		rows, err := selectAll[idRow](t, "ContactIDs", ids)
		for _, r := range rows {
			out[r.ID] = r.Contact
		}
		return err
	})
	return out, err
}

type idRow struct {
	ID      string `db:"id"`
	Contact string `db:"contact"`
	ByKey   bool   `db:"by_key"`
}

func (r *idRow) ptrs() []any { return []any{&r.ID, &r.Contact, &r.ByKey} }

// LinkContactIDs points each id at a contact key (id → key), replacing an
// earlier link of the same id.
func (t *dbTx) LinkContactIDs(links map[string]string) error {
	ids := make([]string, 0, len(links))
	for id := range links {
		ids = append(ids, id)
	}
	_, err := t.bulk("LinkContactIDs", 2, len(ids),
		func(i int, a []any) ([]any, error) { return append(a, ids[i], links[ids[i]]), nil })
	return err
}

// MergeContact folds the contact keyed `from` into the one keyed `into`: its
// runs, messages and ids move over (inbox rows keep the key they arrived
// with: it still resolves) and its row is deleted (the
// caller saves the merged state of `into`). `from` keeps resolving, to `into`.
func (t *dbTx) MergeContact(from, into string) error {
	for _, q := range []string{"MergeContactRuns", "MergeContactOutbox", "MergeContactIDs"} {
		if _, err := t.exec(q, into, from); err != nil {
			return err
		}
	}
	if err := t.mergeOutcomes(from, into); err != nil {
		return err
	}
	if _, err := t.exec("DeleteContact", from); err != nil {
		return err
	}
	return t.LinkContactIDs(map[string]string{from: into})
}

// ---- flow versions ----

func (t *dbTx) FlowVersionID(flowID, hash string) (int64, error) {
	var id int64
	err := t.get(&id, "FlowVersionID", flowID, hash)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return id, err
}

func (t *dbTx) InsertFlowVersion(v *FlowVersion) error {
	if v.ID == 0 {
		v.ID = t.NewID("flow_versions")
	}
	_, err := t.exec("InsertFlowVersion",
		v.ID, v.FlowID, v.Hash, v.File, v.Source, string(v.Templates), ms(v.CreatedAt))
	return err
}

type versionRow struct {
	ID        int64  `db:"id"`
	FlowID    string `db:"flow_id"`
	Hash      string `db:"hash"`
	File      string `db:"file"`
	Source    []byte `db:"source"`
	Templates string `db:"templates"`
	CreatedAt int64  `db:"created_at"`
}

func (r versionRow) version() *FlowVersion {
	v := &FlowVersion{ID: r.ID, FlowID: r.FlowID, Hash: r.Hash, File: r.File, Source: r.Source, CreatedAt: time.UnixMilli(r.CreatedAt).UTC()}
	if r.Templates != "" {
		v.Templates = []byte(r.Templates)
	}
	return v
}

func (t *dbTx) FlowVersion(id int64) (*FlowVersion, error) {
	var r versionRow
	if err := t.get(&r, "FlowVersion", id); err != nil {
		return nil, err
	}
	return r.version(), nil
}

// ---- project versions ----

func (t *dbTx) ProjectVersionID(hash string) (int64, error) {
	var id int64
	err := t.get(&id, "ProjectVersionID", hash)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return id, err
}

func (t *dbTx) InsertProjectVersion(v *ProjectVersion) error {
	if v.ID == 0 {
		v.ID = t.NewID("project_versions")
	}
	flows, err := json.Marshal(v.Flows)
	if err != nil {
		return err
	}
	_, err = t.exec("InsertProjectVersion", v.ID, v.Hash, string(flows), ms(v.CreatedAt))
	return err
}

func (t *dbTx) ProjectVersion(id int64) (*ProjectVersion, error) {
	var r struct {
		ID        int64  `db:"id"`
		Hash      string `db:"hash"`
		Flows     string `db:"flows"`
		CreatedAt int64  `db:"created_at"`
	}
	if err := t.get(&r, "ProjectVersion", id); err != nil {
		return nil, err
	}
	v := &ProjectVersion{ID: r.ID, Hash: r.Hash, CreatedAt: time.UnixMilli(r.CreatedAt).UTC()}
	if err := json.Unmarshal([]byte(r.Flows), &v.Flows); err != nil {
		return nil, fmt.Errorf("project version %d: %w", id, err)
	}
	return v, nil
}

// ---- runs ----

type runRow struct {
	ID        int64         `db:"id"`
	Contact   string        `db:"contact"`
	FlowID    string        `db:"flow_id"`
	VersionID int64         `db:"version_id"`
	Step      string        `db:"step"`
	Status    string        `db:"status"`
	Vars      []byte        `db:"vars"`
	Entry     []byte        `db:"entry"`
	Reply     []byte        `db:"reply"`
	Event     []byte        `db:"event"`
	WaitSeq   int64         `db:"wait_seq"`
	StepSeq   int64         `db:"step_seq"`
	StartedAt int64         `db:"started_at"`
	UpdatedAt int64         `db:"updated_at"`
	EndedAt   sql.NullInt64 `db:"ended_at"`
	EndReason string        `db:"end_reason"`
	SourceID  string        `db:"source_id"`
	Headline  string        `db:"headline"`
	ProjectID int64         `db:"project_version_id"`
}

func (r *runRow) ptrs() []any {
	return []any{&r.ID, &r.Contact, &r.FlowID, &r.VersionID, &r.Step, &r.Status, &r.Vars, &r.Entry, &r.Reply, &r.Event,
		&r.WaitSeq, &r.StepSeq, &r.StartedAt, &r.UpdatedAt, &r.EndedAt, &r.EndReason, &r.SourceID, &r.Headline, &r.ProjectID}
}

func (r runRow) run() *Run {
	run := &Run{ID: r.ID, Contact: r.Contact, FlowID: r.FlowID, VersionID: r.VersionID, Step: r.Step, Status: r.Status,
		Entry: r.Entry, Reply: r.Reply, Event: r.Event, WaitSeq: r.WaitSeq, StepSeq: r.StepSeq,
		StartedAt: time.UnixMilli(r.StartedAt).UTC(), UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC(),
		EndedAt: fromMS(r.EndedAt), EndReason: r.EndReason, SourceID: r.SourceID, Headline: r.Headline,
		ProjectVersionID: r.ProjectID}
	if string(r.Vars) != "{}" {
		_ = json.Unmarshal(r.Vars, &run.Vars)
	}
	if run.Vars == nil {
		run.Vars = map[string]any{}
	}
	return run
}

func scanRuns(rows []runRow) []*Run {
	out := make([]*Run, len(rows))
	for i, r := range rows {
		out[i] = r.run()
	}
	return out
}

func (t *dbTx) LiveRuns(contacts []string) ([]*Run, error) {
	var out []*Run
	err := chunked(contacts, func(ids []string) error {
		rows, err := selectAll[runRow](t, "LiveRuns", ids)
		if err != nil {
			return err
		}
		out = append(out, scanRuns(rows)...)
		return nil
	})
	return out, err
}

func (t *dbTx) Runs(ids []int64) (map[int64]*Run, error) {
	out := make(map[int64]*Run, len(ids))
	err := chunked(ids, func(ids []int64) error {
		rows, err := selectAll[runRow](t, "Runs", ids)
		if err != nil {
			return err
		}
		for _, r := range rows {
			out[r.ID] = r.run()
		}
		return nil
	})
	return out, err
}

func (t *dbTx) SaveRuns(rs []*Run) error {
	_, err := t.bulk("SaveRuns", 19, len(rs),
		func(i int, a []any) ([]any, error) {
			r := rs[i]
			vars, err := jsonObject(fmt.Sprintf("vars of run %d", r.ID), r.Vars)
			if err != nil {
				return a, err
			}
			return append(a, r.ID, r.Contact, r.FlowID, r.VersionID, r.Step, r.Status, vars,
				rawOrEmpty(r.Entry), rawOrEmpty(r.Reply), rawOrEmpty(r.Event), r.WaitSeq, r.StepSeq,
				ms(r.StartedAt), ms(r.UpdatedAt), nullMS(r.EndedAt), r.EndReason, r.SourceID, r.Headline, r.ProjectVersionID), nil
		})
	return err
}

// ---- timers ----

type timerRow struct {
	ID      int64  `db:"id"`
	DueAt   int64  `db:"due_at"`
	RunID   int64  `db:"run_id"`
	Kind    string `db:"kind"`
	Seq     int64  `db:"seq"`
	Contact string `db:"contact"`
}

func (r *timerRow) ptrs() []any { return []any{&r.ID, &r.DueAt, &r.RunID, &r.Kind, &r.Seq, &r.Contact} }

// DueTimers returns the timers due at now, earliest first, with their run's
// contact (so the caller can load contacts and live runs without reading the
// runs first).
func (t *dbTx) DueTimers(now time.Time, limit int) ([]*Timer, error) {
	rows, err := selectAll[timerRow](t, "DueTimers", ms(now), limit)
	out := make([]*Timer, len(rows))
	for i, r := range rows {
		out[i] = &Timer{ID: r.ID, DueAt: time.UnixMilli(r.DueAt).UTC(), RunID: r.RunID, Kind: r.Kind, Seq: r.Seq, Contact: r.Contact}
	}
	return out, err
}

// DueTimersOf returns the timers of the given runs due at now (any number:
// a run has few timers), earliest first.
func (t *dbTx) DueTimersOf(runIDs []int64, now time.Time) ([]*Timer, error) {
	var out []*Timer
	err := chunked(runIDs, func(ids []int64) error {
		rows, err := selectAll[timerRow](t, "DueTimersOf", ms(now), ids)
		if err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, &Timer{ID: r.ID, DueAt: time.UnixMilli(r.DueAt).UTC(), RunID: r.RunID, Kind: r.Kind, Seq: r.Seq, Contact: r.Contact})
		}
		return nil
	})
	kept := out
	sort.Slice(kept, func(i, j int) bool {
		if !kept[i].DueAt.Equal(kept[j].DueAt) {
			return kept[i].DueAt.Before(kept[j].DueAt)
		}
		return kept[i].ID < kept[j].ID
	})
	return kept, err
}

func (t *dbTx) NextTimer(after time.Time) (time.Time, bool, error) {
	var due sql.NullInt64
	if err := t.get(&due, "NextTimer", ms(after)); err != nil {
		return time.Time{}, false, err
	}
	return fromMS(due), due.Valid, nil
}

func (t *dbTx) InsertTimers(ts []*Timer) error {
	for _, tm := range ts {
		if tm.ID == 0 {
			tm.ID = t.NewID("timers")
		}
	}
	_, err := t.bulk("InsertTimers", 5, len(ts),
		func(i int, a []any) ([]any, error) {
			tm := ts[i]
			return append(a, tm.ID, ms(tm.DueAt), tm.RunID, tm.Kind, tm.Seq), nil
		})
	return err
}

func (t *dbTx) DeleteTimers(ids []int64) error {
	return chunked(ids, func(ids []int64) error {
		_, err := t.exec("DeleteTimers", ids)
		return err
	})
}

// ---- outbox ----

type outboxRow struct {
	ID               int64         `db:"id"`
	Key              string        `db:"key"`
	RunID            int64         `db:"run_id"`
	FlowID           string        `db:"flow_id"`
	Step             string        `db:"step"`
	Contact          string        `db:"contact"`
	PhoneNumberID    string        `db:"phone_number_id"`
	Kind             string        `db:"kind"`
	Category         string        `db:"category"`
	AssumeOptIn      bool          `db:"assume_opt_in"`
	Payload          []byte        `db:"payload"`
	Fallback         []byte        `db:"fallback"`
	FallbackCategory string        `db:"fallback_category"`
	Status           string        `db:"status"`
	SentAs           string        `db:"sent_as"`
	Attempts         int           `db:"attempts"`
	NextAttemptAt    int64         `db:"next_attempt_at"`
	ErrorCode        int           `db:"error_code"`
	LastError        string        `db:"last_error"`
	ProviderID       string        `db:"provider_id"`
	CreatedAt        int64         `db:"created_at"`
	SentAt           sql.NullInt64 `db:"sent_at"`
	UpdatedAt        int64         `db:"updated_at"`
	Resends          int           `db:"resends"`
	LimitRetries     int           `db:"limit_retries"`
	Template         string        `db:"template"`
}

func (r *outboxRow) ptrs() []any {
	return []any{&r.ID, &r.Key, &r.RunID, &r.FlowID, &r.Step, &r.Contact, &r.PhoneNumberID, &r.Kind, &r.Category,
		&r.AssumeOptIn, &r.Payload, &r.Fallback, &r.FallbackCategory, &r.Status, &r.SentAs, &r.Attempts,
		&r.NextAttemptAt, &r.ErrorCode, &r.LastError, &r.ProviderID, &r.CreatedAt, &r.SentAt, &r.UpdatedAt, &r.Resends, &r.Template, &r.LimitRetries}
}

func (r outboxRow) item() *OutboxItem {
	return &OutboxItem{ID: r.ID, Key: r.Key, RunID: r.RunID, FlowID: r.FlowID, Step: r.Step, Contact: r.Contact,
		PhoneNumberID: r.PhoneNumberID, Kind: r.Kind, Category: r.Category, AssumeOptIn: r.AssumeOptIn,
		Payload: r.Payload, Fallback: r.Fallback, FallbackCategory: r.FallbackCategory, Status: r.Status,
		SentAs: r.SentAs, Attempts: r.Attempts, Resends: r.Resends, LimitRetries: r.LimitRetries, NextAttemptAt: time.UnixMilli(r.NextAttemptAt).UTC(),
		ErrorCode: r.ErrorCode, LastError: r.LastError, ProviderID: r.ProviderID, Template: r.Template,
		CreatedAt: time.UnixMilli(r.CreatedAt).UTC(), SentAt: fromMS(r.SentAt), UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC()}
}

func scanOutbox(rows []outboxRow) []*OutboxItem {
	out := make([]*OutboxItem, len(rows))
	for i, r := range rows {
		out[i] = r.item()
	}
	return out
}

// ClaimOutbox selects pending messages due now whose contact has no earlier message
// still open: messages to one contact go out one at a time, in order.
func (t *dbTx) ClaimOutbox(now time.Time, limit int) ([]*OutboxItem, error) {
	rows, err := selectAll[outboxRow](t, "ClaimOutbox", ms(now), limit)
	return scanOutbox(rows), err
}

func (t *dbTx) NextOutboxAttempt(after time.Time) (time.Time, bool, error) {
	var at sql.NullInt64
	if err := t.get(&at, "NextOutboxAttempt", ms(after)); err != nil {
		return time.Time{}, false, err
	}
	return fromMS(at), at.Valid, nil
}

func (t *dbTx) OutboxByIDs(ids []int64) (map[int64]*OutboxItem, error) {
	out := map[int64]*OutboxItem{}
	err := chunked(ids, func(ids []int64) error {
		rows, err := selectAll[outboxRow](t, "OutboxByIDs", ids)
		if err != nil {
			return err
		}
		for _, r := range rows {
			out[r.ID] = r.item()
		}
		return nil
	})
	return out, err
}

func (t *dbTx) OutboxByProvider(ids []string) (map[string]*OutboxItem, error) {
	out := map[string]*OutboxItem{}
	err := chunked(ids, func(ids []string) error {
		rows, err := selectAll[outboxRow](t, "OutboxByProvider", ids)
		if err != nil {
			return err
		}
		for _, r := range rows {
			out[r.ProviderID] = r.item()
		}
		return nil
	})
	return out, err
}

func (t *dbTx) InsertOutbox(items []*OutboxItem) error {
	for _, it := range items {
		if it.ID == 0 {
			it.ID = t.NewID("outbox")
		}
	}
	_, err := t.bulk("InsertOutbox", 25, len(items),
		func(i int, a []any) ([]any, error) { return appendOutbox(a, items[i]), nil })
	return err
}

func appendOutbox(a []any, it *OutboxItem) []any {
	return append(a, it.ID, it.Key, it.RunID, it.FlowID, it.Step, it.Contact, it.PhoneNumberID, it.Kind, it.Category,
		it.AssumeOptIn, it.Payload, it.Fallback, it.FallbackCategory, it.Status, it.SentAs, it.Attempts,
		ms(it.NextAttemptAt), it.ErrorCode, it.LastError, it.ProviderID, ms(it.CreatedAt), nullMS(it.SentAt), ms(it.UpdatedAt), it.Resends, it.Template)
}

func (t *dbTx) MarkSendingUnknown(at time.Time) (int, error) {
	// Claimed but never handed to the API: safe to send, back to pending.
	if _, err := t.exec("UnclaimOutbox", ms(at)); err != nil {
		return 0, err
	}
	res, err := t.exec("SendingUnknown", ms(at))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *dbTx) MarkSending(ids []int64, at time.Time) error {
	return chunked(ids, func(ids []int64) error {
		_, err := t.exec("MarkSending", ms(at), ids)
		return err
	})
}

func (t *dbTx) CancelPendingOutbox(contacts []string, at time.Time) error {
	return chunked(contacts, func(ids []string) error {
		_, err := t.exec("CancelPendingOutbox", ms(at), ids)
		return err
	})
}

// ---- statuses ----

func (t *dbTx) InsertStatuses(rs []*StatusRecord) (int, error) {
	n, err := t.bulk("InsertStatuses", 6, len(rs),
		func(i int, a []any) ([]any, error) {
			r := rs[i]
			var ob any
			if r.OutboxID != 0 {
				ob = r.OutboxID
			}
			return append(a, ob, r.ProviderID, r.Status, ms(r.At), r.ErrorCode, r.Payload), nil
		})
	return int(n), err
}

// ---- schedules ----

type scheduleRow struct {
	FlowID   string        `db:"flow_id"`
	Spec     string        `db:"spec"`
	NextAt   int64         `db:"next_at"`
	FiringAt sql.NullInt64 `db:"firing_at"`
	Cursor   string        `db:"cursor"`
}

func (t *dbTx) Schedules() (map[string]*Schedule, error) {
	var rows []scheduleRow
	if err := t.selectRows(&rows, "Schedules"); err != nil {
		return nil, err
	}
	out := map[string]*Schedule{}
	for _, r := range rows {
		out[r.FlowID] = &Schedule{FlowID: r.FlowID, Spec: r.Spec, NextAt: time.UnixMilli(r.NextAt).UTC(), FiringAt: fromMS(r.FiringAt), Cursor: r.Cursor}
	}
	return out, nil
}

func (t *dbTx) SaveSchedule(s *Schedule) error {
	_, err := t.exec("SaveSchedule",
		s.FlowID, s.Spec, ms(s.NextAt), nullMS(s.FiringAt), s.Cursor)
	return err
}

// script runs a named query of several statements (separated by ';' at the
// end of a line) that take no arguments, one statement at a time.
func (t *dbTx) script(name string) error {
	q, _, err := t.s.q.sql(name, nil)
	if err != nil {
		return err
	}
	for _, stmt := range strings.Split(q, ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := t.tx.ExecContext(t.ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}
