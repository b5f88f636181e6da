package store

import (
	"context"
	"database/sql"
	"time"
)

type templateStateRow struct {
	Name       string        `db:"name"`
	Language   string        `db:"language"`
	TemplateID string        `db:"template_id"`
	Status     string        `db:"status"`
	Reason     string        `db:"reason"`
	Event      string        `db:"event"`
	StatusAt   sql.NullInt64 `db:"status_at"`
	Category   string        `db:"category"`
	CategoryAt sql.NullInt64 `db:"category_at"`
	Quality    string        `db:"quality"`
	QualityAt  sql.NullInt64 `db:"quality_at"`
	UpdatedAt  int64         `db:"updated_at"`
}

func (r templateStateRow) state() *TemplateState {
	return &TemplateState{Name: r.Name, Language: r.Language, TemplateID: r.TemplateID, Status: r.Status, Reason: r.Reason,
		Event: r.Event, StatusAt: fromMS(r.StatusAt), Category: r.Category, CategoryAt: fromMS(r.CategoryAt),
		Quality: r.Quality, QualityAt: fromMS(r.QualityAt), UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC()}
}

func scanTemplateStates(rows []templateStateRow) []*TemplateState {
	out := make([]*TemplateState, len(rows))
	for i, r := range rows {
		out[i] = r.state()
	}
	return out
}

// TemplateStates lists what is known of every template, by name and language.
func (t *dbTx) TemplateStates() ([]*TemplateState, error) {
	var rows []templateStateRow
	err := t.selectRows(&rows, "TemplateStates")
	return scanTemplateStates(rows), err
}

// The three setters insert the template's row or update one attribute of
// it, guarded by that attribute's time: a webhook Meta delivers late (older
// than what is recorded) changes nothing and reports false.

// SetTemplateStatus records a template's status (and the event that set it).
func (t *dbTx) SetTemplateStatus(name, language, id, status, event, reason string, at time.Time) (bool, error) {
	return t.upsertTemplate("SetTemplateStatus", name, language, id, status, event, reason, ms(at))
}

// SetTemplateCategory records a template's category.
func (t *dbTx) SetTemplateCategory(name, language, id, category string, at time.Time) (bool, error) {
	return t.upsertTemplate("SetTemplateCategory", name, language, id, category, ms(at))
}

// SetTemplateQuality records a template's quality score.
func (t *dbTx) SetTemplateQuality(name, language, id, quality string, at time.Time) (bool, error) {
	return t.upsertTemplate("SetTemplateQuality", name, language, id, quality, ms(at))
}

func (t *dbTx) upsertTemplate(q string, args ...any) (bool, error) {
	res, err := t.exec(q, args...)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// HoldOutbox moves the pending messages that send template (its key,
// "name:language") to held: the template was paused or disabled. Free-form
// messages whose fallback it is stay pending (inside the window they need no
// template); the sender holds them if they come to need it.
func (t *dbTx) HoldOutbox(template, reason string, at time.Time) (int, error) {
	res, err := t.exec("HoldOutbox", template, reason, ms(at))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ReleaseOutbox moves the messages held for template back to pending, due at
// once: the template was approved again.
func (t *dbTx) ReleaseOutbox(template string, at time.Time) (int, error) {
	res, err := t.exec("ReleaseOutbox", template, ms(at))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// SetPhoneQuality records a phone_number_quality_update, unless a later one
// of that number is recorded already.
func (t *dbTx) SetPhoneQuality(p *PhoneQuality) (bool, error) {
	return t.upsertTemplate("SetPhoneQuality", p.DisplayPhoneNumber, p.Event, p.CurrentLimit, p.OldLimit, p.MaxDaily, ms(p.At))
}

type phoneQualityRow struct {
	DisplayPhoneNumber string `db:"display_phone_number"`
	Event              string `db:"event"`
	CurrentLimit       string `db:"current_limit"`
	OldLimit           string `db:"old_limit"`
	MaxDaily           string `db:"max_daily"`
	At                 int64  `db:"at"`
}

// TemplateStates reads what is known of every template (the read pool).
func (s *DB) TemplateStates(ctx context.Context) ([]*TemplateState, error) {
	var rows []templateStateRow
	err := s.selectR(ctx, &rows, "TemplateStates")
	return scanTemplateStates(rows), err
}

// PhoneQualities reads the last quality update of every business number.
func (s *DB) PhoneQualities(ctx context.Context) ([]*PhoneQuality, error) {
	var rows []phoneQualityRow
	if err := s.selectR(ctx, &rows, "PhoneQualities"); err != nil {
		return nil, err
	}
	out := make([]*PhoneQuality, len(rows))
	for i, r := range rows {
		out[i] = &PhoneQuality{DisplayPhoneNumber: r.DisplayPhoneNumber, Event: r.Event, CurrentLimit: r.CurrentLimit,
			OldLimit: r.OldLimit, MaxDaily: r.MaxDaily, At: time.UnixMilli(r.At).UTC()}
	}
	return out, nil
}
