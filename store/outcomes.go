package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"
)

// ---- clicks ----

func (t *dbTx) SaveClicks(cs []*Click) error {
	_, err := t.bulk("SaveClicks", 5, len(cs), func(i int, a []any) ([]any, error) {
		c := cs[i]
		return append(a, c.Contact, c.SourceID, c.CtwaClid, c.Headline, ms(c.At)), nil
	})
	return err
}

type clickRow struct {
	Contact, SourceID, CtwaClid, Headline string
	At                                    int64
}

func (r *clickRow) ptrs() []any {
	return []any{&r.Contact, &r.SourceID, &r.CtwaClid, &r.Headline, &r.At}
}

func (t *dbTx) Clicks(contacts []string) (map[string]*Click, error) {
	out := map[string]*Click{}
	err := chunked(contacts, func(ids []string) error {
		rows, err := selectAll[clickRow](t, "Clicks", ids)
		for _, r := range rows {
			out[r.Contact] = &Click{Contact: r.Contact, SourceID: r.SourceID, CtwaClid: r.CtwaClid, Headline: r.Headline, At: time.UnixMilli(r.At).UTC()}
		}
		return err
	})
	return out, err
}

// mergeOutcomes moves a merged contact's conversions to the contact it was
// merged into, and keeps the later of their two clicks.
func (t *dbTx) mergeOutcomes(from, into string) error {
	for _, q := range []string{"MergeContactConversions", "MergeContactClicks"} {
		if _, err := t.exec(q, into, from); err != nil {
			return err
		}
	}
	_, err := t.exec("DeleteClicks", from)
	return err
}

// ---- split variants ----

func (t *dbTx) InsertRunVariants(vs []*RunVariant) error {
	_, err := t.bulk("InsertRunVariants", 5, len(vs), func(i int, a []any) ([]any, error) {
		v := vs[i]
		return append(a, v.RunID, v.Step, v.Variant, v.FlowID, ms(v.At)), nil
	})
	return err
}

type variantRow struct {
	RunID         int64
	Step, Variant string
}

func (r *variantRow) ptrs() []any { return []any{&r.RunID, &r.Step, &r.Variant} }

func (t *dbTx) RunVariants(runIDs []int64) (map[int64]map[string]string, error) {
	out := map[int64]map[string]string{}
	err := chunked(runIDs, func(ids []int64) error {
		rows, err := selectAll[variantRow](t, "RunVariants", ids)
		for _, r := range rows {
			if out[r.RunID] == nil {
				out[r.RunID] = map[string]string{}
			}
			out[r.RunID][r.Step] = r.Variant
		}
		return err
	})
	return out, err
}

// ---- conversions ----

// bulkReturning runs the named one-row insert over n rows in multi-row
// statements, like bulk, and hands each row its RETURNING clause gives back
// to scan.
func (t *dbTx) bulkReturning(name string, cols, n int, row func(i int, a []any) ([]any, error), scan func(*sql.Rows) error) error {
	args := make([]any, 0, min(n, maxRows)*cols)
	for start := 0; start < n; {
		end := start + chunkRows(n-start)
		args = args[:0]
		for i := start; i < end; i++ {
			var err error
			if args, err = row(i, args); err != nil {
				return err
			}
		}
		q, err := t.s.q.rows(name, end-start)
		if err != nil {
			return err
		}
		if err := t.scanText(q, args, scan); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// scanText runs a statement that returns rows and hands each to scan.
func (t *dbTx) scanText(q string, args []any, scan func(*sql.Rows) error) error {
	if t.err != nil {
		return t.err
	}
	var rows *sql.Rows
	var err error
	if t.s.drv.SingleWriter() {
		var st *sql.Stmt
		if st, err = t.stmt(q); err != nil {
			return err
		}
		rows, err = st.QueryContext(t.ctx, args...)
	} else {
		rows, err = t.tx.QueryContext(t.ctx, q, args...)
	}
	if err != nil {
		return t.s.classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return t.s.classify(rows.Err())
}

func (t *dbTx) InsertConversions(cs []*Conversion) ([]*Conversion, error) {
	type key struct {
		run  int64
		step string
	}
	byKey := make(map[key]*Conversion, len(cs))
	for _, c := range cs {
		if _, dup := byKey[key{c.RunID, c.Step}]; !dup {
			byKey[key{c.RunID, c.Step}] = c
		}
	}
	var fresh []*Conversion
	err := t.bulkReturning("InsertConversions", 12, len(cs),
		func(i int, a []any) ([]any, error) {
			c := cs[i]
			vars, err := encodeJSON(fmt.Sprintf("variants of run %d", c.RunID), variantsOrEmpty(c.Variants))
			if err != nil {
				return a, err
			}
			var v any
			if c.Value != nil {
				if math.IsInf(*c.Value, 0) || math.IsNaN(*c.Value) {
					return a, fmt.Errorf("%w: the value of conversion %s of run %d is not a finite number", ErrInvalid, c.Step, c.RunID)
				}
				v = *c.Value
			}
			return append(a, c.RunID, c.Contact, c.FlowID, c.Step, c.Event, v, c.Currency, c.SourceID, c.CtwaClid,
				nullMS(c.ClickedAt), vars, ms(c.At)), nil
		},
		func(rows *sql.Rows) error {
			var id, run int64
			var step string
			if err := rows.Scan(&id, &run, &step); err != nil {
				return err
			}
			if c := byKey[key{run, step}]; c != nil {
				c.ID = id
				fresh = append(fresh, c)
			}
			return nil
		})
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].ID < fresh[j].ID })
	return fresh, err
}

func variantsOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

type conversionRow struct {
	ID        int64           `db:"id"`
	RunID     int64           `db:"run_id"`
	Contact   string          `db:"contact"`
	FlowID    string          `db:"flow_id"`
	Step      string          `db:"step"`
	Event     string          `db:"event"`
	Value     sql.NullFloat64 `db:"value"`
	Currency  string          `db:"currency"`
	SourceID  string          `db:"source_id"`
	CtwaClid  string          `db:"ctwa_clid"`
	ClickedAt sql.NullInt64   `db:"clicked_at"`
	Variants  []byte          `db:"variants"`
	At        int64           `db:"at"`
}

func (r conversionRow) conversion() *Conversion {
	c := &Conversion{ID: r.ID, RunID: r.RunID, Contact: r.Contact, FlowID: r.FlowID, Step: r.Step, Event: r.Event,
		Currency: r.Currency, SourceID: r.SourceID, CtwaClid: r.CtwaClid, ClickedAt: fromMS(r.ClickedAt),
		At: time.UnixMilli(r.At).UTC()}
	if r.Value.Valid {
		v := r.Value.Float64
		c.Value = &v
	}
	if string(r.Variants) != "{}" {
		_ = json.Unmarshal(r.Variants, &c.Variants)
	}
	return c
}

// endOfTime is the exclusive upper bound of an open period.
const endOfTime = int64(1) << 62

func (s *DB) Conversions(ctx context.Context, f ConversionFilter) ([]*Conversion, error) {
	until := endOfTime
	if !f.Until.IsZero() {
		until = ms(f.Until)
	}
	var since int64
	if !f.Since.IsZero() {
		since = ms(f.Since)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	var rows []conversionRow
	err := s.selectR(ctx, &rows, "Conversions", f.FlowID, f.Contact, f.RunID, since, until, limit)
	out := make([]*Conversion, len(rows))
	for i, r := range rows {
		out[i] = r.conversion()
	}
	return out, err
}

// ---- the Conversions API outbox ----

type capiRow struct {
	ID           int64         `db:"id"`
	ConversionID int64         `db:"conversion_id"`
	EventID      string        `db:"event_id"`
	DatasetID    string        `db:"dataset_id"`
	Status       string        `db:"status"`
	Attempts     int           `db:"attempts"`
	NextAt       int64         `db:"next_at"`
	ExpiresAt    int64         `db:"expires_at"`
	ErrorCode    int           `db:"error_code"`
	Error        string        `db:"error"`
	Body         []byte        `db:"body"`
	CreatedAt    int64         `db:"created_at"`
	SentAt       sql.NullInt64 `db:"sent_at"`
	UpdatedAt    int64         `db:"updated_at"`
}

func (r *capiRow) ptrs() []any {
	return []any{&r.ID, &r.ConversionID, &r.EventID, &r.DatasetID, &r.Status, &r.Attempts, &r.NextAt, &r.ExpiresAt, &r.ErrorCode,
		&r.Error, &r.Body, &r.CreatedAt, &r.SentAt, &r.UpdatedAt}
}

func (r capiRow) event() *CAPIEvent {
	return &CAPIEvent{ID: r.ID, ConversionID: r.ConversionID, EventID: r.EventID, DatasetID: r.DatasetID, Status: r.Status,
		Attempts: r.Attempts, NextAt: time.UnixMilli(r.NextAt).UTC(), ExpiresAt: time.UnixMilli(r.ExpiresAt).UTC(), ErrorCode: r.ErrorCode, Error: r.Error, Body: r.Body,
		CreatedAt: time.UnixMilli(r.CreatedAt).UTC(), SentAt: fromMS(r.SentAt), UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC()}
}

func scanCAPI(rows []capiRow) []*CAPIEvent {
	out := make([]*CAPIEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out
}

func (t *dbTx) InsertCAPIEvents(es []*CAPIEvent) error {
	byConv := make(map[int64]*CAPIEvent, len(es))
	for _, e := range es {
		if _, dup := byConv[e.ConversionID]; !dup {
			byConv[e.ConversionID] = e
		}
	}
	return t.bulkReturning("InsertCAPIEvents", 13, len(es),
		func(i int, a []any) ([]any, error) {
			e := es[i]
			return append(a, e.ConversionID, e.EventID, e.DatasetID, e.Status, e.Attempts, ms(e.NextAt), ms(e.ExpiresAt), e.ErrorCode, e.Error,
				e.Body, ms(e.CreatedAt), nullMS(e.SentAt), ms(e.UpdatedAt)), nil
		},
		func(rows *sql.Rows) error {
			var id, conv int64
			if err := rows.Scan(&id, &conv); err != nil {
				return err
			}
			if e := byConv[conv]; e != nil {
				e.ID = id
			}
			return nil
		})
}

func (t *dbTx) ClaimCAPI(now time.Time, limit int) ([]*CAPIEvent, error) {
	rows, err := selectAll[capiRow](t, "ClaimCAPI", ms(now), limit)
	out := scanCAPI(rows)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAt.Equal(out[j].NextAt) {
			return out[i].NextAt.Before(out[j].NextAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

func (t *dbTx) ChangeCAPI(cs []*CAPIChange) (int, error) {
	n := 0
	for _, c := range cs {
		k, err := t.affected("ChangeCAPI", ms(c.At), c.Status, c.SetError, c.ErrorCode, c.Error,
			c.SetAttempts, c.Attempts, c.SetNextAt, ms(c.NextAt), c.SetSentAt, nullMS(c.SentAt), c.From, c.ID)
		if err != nil {
			return n, err
		}
		c.Applied = k > 0
		if c.Applied {
			n++
		}
	}
	return n, nil
}

func (t *dbTx) RecoverCAPI(at time.Time) (int, error) { return t.affected("RecoverCAPI", ms(at)) }

func (t *dbTx) NextCAPIAttempt(after time.Time) (time.Time, bool, error) {
	var at sql.NullInt64
	if err := t.get(&at, "NextCAPIAttempt", ms(after)); err != nil {
		return time.Time{}, false, err
	}
	return fromMS(at), at.Valid, nil
}

func (s *DB) CAPIEvents(ctx context.Context, status string, limit int) ([]*CAPIEvent, error) {
	var rows []capiRow
	err := s.selectR(ctx, &rows, "CAPIEvents", status, limit)
	return scanCAPI(rows), err
}

func (s *DB) CAPIEventsOf(ctx context.Context, conversionIDs []int64) (map[int64]*CAPIEvent, error) {
	out := map[int64]*CAPIEvent{}
	err := chunked(conversionIDs, func(ids []int64) error {
		var rows []capiRow
		err := s.selectR(ctx, &rows, "CAPIEventsOf", ids)
		for _, r := range rows {
			out[r.ConversionID] = r.event()
		}
		return err
	})
	return out, err
}

func (s *DB) CAPIDue(ctx context.Context, now time.Time) (bool, error) {
	var due bool
	err := s.get(ctx, &due, "CAPIDue", ms(now))
	return due, err
}

// ---- counts ----

func (s *DB) OutcomeCounts(ctx context.Context, flowID string, since, until time.Time) (*OutcomeCounts, error) {
	end := endOfTime
	if !until.IsZero() {
		end = ms(until)
	}
	var start int64
	if !since.IsZero() {
		start = ms(since)
	}
	args := []any{flowID, start, end}
	oc := &OutcomeCounts{}
	if err := s.scanR(ctx, "OutcomeTotals", args, &oc.Entered, &oc.Converted); err != nil {
		return nil, err
	}
	if err := s.selectRows(ctx, "OutcomeEvents", args, func(r *sql.Rows) error {
		var e EventCount
		if err := r.Scan(&e.Event, &e.Currency, &e.Count, &e.Value); err != nil {
			return err
		}
		oc.Conversions = append(oc.Conversions, e)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.selectRows(ctx, "OutcomeSplits", args, func(r *sql.Rows) error {
		var sc SplitCount
		if err := r.Scan(&sc.Step, &sc.Variant, &sc.Entered, &sc.Converted); err != nil {
			return err
		}
		oc.Splits = append(oc.Splits, sc)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.selectRows(ctx, "OutcomeAds", args, func(r *sql.Rows) error {
		var a AdCount
		if err := r.Scan(&a.SourceID, &a.Entered, &a.Converted); err != nil {
			return err
		}
		oc.ByAd = append(oc.ByAd, a)
		return nil
	}); err != nil {
		return nil, err
	}
	return oc, nil
}

// selectRows runs a named query on the read pool and hands each row to scan.
func (s *DB) selectRows(ctx context.Context, name string, args []any, scan func(*sql.Rows) error) error {
	q, a, err := s.q.sql(name, args)
	if err != nil {
		return err
	}
	rows, err := s.r.QueryContext(ctx, q, a...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
