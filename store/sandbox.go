package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Database modes, recorded in meta under MetaMode by the daemon that opens it: a
// sandbox (`serve --dev`) writes simulated sends and moves its clock, so the two
// never share a database.
const (
	MetaMode       = "mode"
	ModeProduction = "production"
	ModeDev        = "dev"
)

// Meta returns a value of the meta table ("" and false when unset).
func (s *DB) Meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.getW(ctx, &v, "Meta", key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

// SetMeta stores a value of the meta table.
func (s *DB) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.execW(ctx, "SetMeta", key, value)
	return err
}

// ErrMode means the database belongs to the other kind of daemon.
var ErrMode = errors.New("database mode")

// ClaimMode marks the database for a mode, or refuses it when another mode
// already used it. A database without a mark that already holds contacts or
// events was used before marks existed, by a daemon that can only have been a
// production one.
func (s *DB) ClaimMode(ctx context.Context, mode string) error {
	cur, ok, err := s.Meta(ctx, MetaMode)
	if err != nil {
		return err
	}
	if !ok {
		var used int
		if err := s.getW(ctx, &used, "Used"); err != nil {
			return err
		}
		if used > 0 {
			cur = ModeProduction
		}
	}
	if cur != "" && cur != mode {
		return fmt.Errorf("%w: %s was used by a %s daemon, not %s", ErrMode, s.Name(), cur, mode)
	}
	if cur == mode {
		return nil
	}
	return s.SetMeta(ctx, MetaMode, mode)
}

// InboxOf returns a contact's latest inbound events (messages and API events),
// oldest first: the sandbox's transcript of what the contact wrote.
func (s *DB) InboxOf(ctx context.Context, waID string, limit int) ([]*InboxItem, error) {
	var rows []inboxRow
	err := s.selectR(ctx, &rows, "InboxOf", waID, limit)
	out := make([]*InboxItem, len(rows))
	for i, r := range rows {
		out[i] = r.item()
	}
	return out, err
}

// SandboxSend is what the sandbox's simulated Cloud API recorded when it
// accepted a message.
type SandboxSend struct {
	ProviderID    string
	Contact       string
	At            time.Time
	Type          string
	WindowOpen    bool
	LastInboundAt time.Time // the contact's last message as the API knew it (zero: never)
}

// RecordSandboxSend stores an accepted simulated send (once per provider id).
func (s *DB) RecordSandboxSend(ctx context.Context, r SandboxSend) error {
	_, err := s.execW(ctx, "RecordSandboxSend",
		r.ProviderID, r.Contact, ms(r.At), r.Type, r.WindowOpen, nullMS(r.LastInboundAt))
	return err
}

// SandboxSends returns a contact's recorded simulated sends by provider id.
func (s *DB) SandboxSends(ctx context.Context, waID string, limit int) (map[string]SandboxSend, error) {
	var rows []struct {
		ProviderID string        `db:"provider_id"`
		Contact    string        `db:"contact"`
		At         int64         `db:"at"`
		Type       string        `db:"type"`
		Open       bool          `db:"window_open"`
		Last       sql.NullInt64 `db:"last_inbound_at"`
	}
	err := s.selectR(ctx, &rows, "SandboxSends", waID, limit)
	out := make(map[string]SandboxSend, len(rows))
	for _, r := range rows {
		out[r.ProviderID] = SandboxSend{ProviderID: r.ProviderID, Contact: r.Contact, At: time.UnixMilli(r.At).UTC(),
			Type: r.Type, WindowOpen: r.Open, LastInboundAt: fromMS(r.Last)}
	}
	return out, err
}

// TimersOf returns the timers of a contact's live runs, earliest first.
func (s *DB) TimersOf(ctx context.Context, waID string) ([]*Timer, error) {
	var rows []timerRow
	err := s.selectR(ctx, &rows, "TimersOf", waID)
	out := make([]*Timer, len(rows))
	for i, r := range rows {
		out[i] = &Timer{ID: r.ID, DueAt: time.UnixMilli(r.DueAt).UTC(), RunID: r.RunID, Kind: r.Kind, Seq: r.Seq, Contact: r.Contact}
	}
	return out, err
}

// ScheduleList returns every schedule trigger's state.
func (s *DB) ScheduleList(ctx context.Context) ([]*Schedule, error) {
	var rows []scheduleRow
	err := s.selectR(ctx, &rows, "Schedules")
	out := make([]*Schedule, len(rows))
	for i, r := range rows {
		out[i] = &Schedule{FlowID: r.FlowID, Spec: r.Spec, NextAt: time.UnixMilli(r.NextAt).UTC(), FiringAt: fromMS(r.FiringAt), Cursor: r.Cursor}
	}
	return out, err
}

// EraseSandbox empties a dev database for a new sandbox: every contact, run,
// timer, event, message and schedule goes, in one transaction. Flow versions
// stay (the loaded flows point at them) and so does the meta table's mode; the
// caller resets the clock.
func (s *DB) EraseSandbox(ctx context.Context) error {
	if mode, _, err := s.Meta(ctx, MetaMode); err != nil {
		return err
	} else if mode != ModeDev {
		return fmt.Errorf("%w: refusing to erase %s: it is not a dev database", ErrMode, s.Name())
	}
	return s.Write(ctx, func(tx Tx) error {
		t := tx.(*dbTx)
		if err := t.script("EraseSandbox"); err != nil {
			return err
		}
		_, err := t.exec("EraseSandboxMeta", MetaMode)
		return err
	})
}

// SetTimezone sets a contact's time zone ("" for the daemon's), creating the
// contact when it never wrote: the sandbox sets it before the first message so
// that quiet hours apply from the start.
func (s *DB) SetTimezone(ctx context.Context, waID, tz string, at time.Time) error {
	return s.Write(ctx, func(tx Tx) error {
		_, err := tx.(*dbTx).exec("SetTimezone", waID, tz, ms(at))
		return err
	})
}
