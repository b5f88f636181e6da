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

const templateStateCols = "name, language, template_id, status, reason, event, status_at, category, category_at, quality, quality_at, updated_at"

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
func (t *sqliteTx) TemplateStates() ([]*TemplateState, error) {
	var rows []templateStateRow
	err := t.selectRows(&rows, "SELECT "+templateStateCols+" FROM template_states ORDER BY name, language")
	return scanTemplateStates(rows), err
}

// The three setters insert the template's row or update one attribute of
// it, guarded by that attribute's time: a webhook Meta delivers late (older
// than what is recorded) changes nothing and reports false.

// SetTemplateStatus records a template's status (and the event that set it).
func (t *sqliteTx) SetTemplateStatus(name, language, id, status, event, reason string, at time.Time) (bool, error) {
	return t.upsertTemplate(`INSERT INTO template_states (name, language, template_id, status, event, reason, status_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name, language) DO UPDATE SET status = excluded.status, event = excluded.event, reason = excluded.reason,
			status_at = excluded.status_at, updated_at = excluded.updated_at,
			template_id = CASE WHEN excluded.template_id != '' THEN excluded.template_id ELSE template_states.template_id END
		WHERE template_states.status_at IS NULL OR template_states.status_at <= excluded.status_at`,
		name, language, id, status, event, reason, ms(at), ms(at))
}

// SetTemplateCategory records a template's category.
func (t *sqliteTx) SetTemplateCategory(name, language, id, category string, at time.Time) (bool, error) {
	return t.upsertTemplate(`INSERT INTO template_states (name, language, template_id, category, category_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name, language) DO UPDATE SET category = excluded.category, category_at = excluded.category_at,
			updated_at = excluded.updated_at,
			template_id = CASE WHEN excluded.template_id != '' THEN excluded.template_id ELSE template_states.template_id END
		WHERE template_states.category_at IS NULL OR template_states.category_at <= excluded.category_at`,
		name, language, id, category, ms(at), ms(at))
}

// SetTemplateQuality records a template's quality score.
func (t *sqliteTx) SetTemplateQuality(name, language, id, quality string, at time.Time) (bool, error) {
	return t.upsertTemplate(`INSERT INTO template_states (name, language, template_id, quality, quality_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name, language) DO UPDATE SET quality = excluded.quality, quality_at = excluded.quality_at,
			updated_at = excluded.updated_at,
			template_id = CASE WHEN excluded.template_id != '' THEN excluded.template_id ELSE template_states.template_id END
		WHERE template_states.quality_at IS NULL OR template_states.quality_at <= excluded.quality_at`,
		name, language, id, quality, ms(at), ms(at))
}

func (t *sqliteTx) upsertTemplate(q string, args ...any) (bool, error) {
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
func (t *sqliteTx) HoldOutbox(template, reason string, at time.Time) (int, error) {
	res, err := t.exec("UPDATE outbox SET status = 'held', last_error = ?, updated_at = ? WHERE status = 'pending' AND kind = 'template' AND template = ?",
		reason, ms(at), template)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ReleaseOutbox moves the messages held for template back to pending, due at
// once: the template was approved again.
func (t *sqliteTx) ReleaseOutbox(template string, at time.Time) (int, error) {
	res, err := t.exec("UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = '', updated_at = ? WHERE status = 'held' AND template = ?",
		ms(at), ms(at), template)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// SetPhoneQuality records a phone_number_quality_update, unless a later one
// of that number is recorded already.
func (t *sqliteTx) SetPhoneQuality(p *PhoneQuality) (bool, error) {
	return t.upsertTemplate(`INSERT INTO phone_quality (display_phone_number, event, current_limit, old_limit, max_daily, at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (display_phone_number) DO UPDATE SET event = excluded.event, current_limit = excluded.current_limit,
			old_limit = excluded.old_limit, max_daily = excluded.max_daily, at = excluded.at
		WHERE phone_quality.at <= excluded.at`,
		p.DisplayPhoneNumber, p.Event, p.CurrentLimit, p.OldLimit, p.MaxDaily, ms(p.At))
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
func (s *SQLite) TemplateStates(ctx context.Context) ([]*TemplateState, error) {
	var rows []templateStateRow
	err := s.r.SelectContext(ctx, &rows, "SELECT "+templateStateCols+" FROM template_states ORDER BY name, language")
	return scanTemplateStates(rows), err
}

// PhoneQualities reads the last quality update of every business number.
func (s *SQLite) PhoneQualities(ctx context.Context) ([]*PhoneQuality, error) {
	var rows []phoneQualityRow
	if err := s.r.SelectContext(ctx, &rows, "SELECT display_phone_number, event, current_limit, old_limit, max_daily, at FROM phone_quality ORDER BY display_phone_number"); err != nil {
		return nil, err
	}
	out := make([]*PhoneQuality, len(rows))
	for i, r := range rows {
		out[i] = &PhoneQuality{DisplayPhoneNumber: r.DisplayPhoneNumber, Event: r.Event, CurrentLimit: r.CurrentLimit,
			OldLimit: r.OldLimit, MaxDaily: r.MaxDaily, At: time.UnixMilli(r.At).UTC()}
	}
	return out, nil
}
