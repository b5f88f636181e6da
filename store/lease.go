package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Lease is the state of a named lease: who holds it, since when, until when.
// A holder keeps it by renewing it before ExpiresAt; once it has lapsed any
// other candidate may take it.
type Lease struct {
	Name      string
	Holder    string
	ElectedAt time.Time // when Holder took it
	RenewedAt time.Time // when Holder last renewed it (ExpiresAt less the ttl)
	ExpiresAt time.Time
}

// ErrNotLeader is a fenced transaction's error when its process no longer
// holds the lease it runs under: another replica took it over.
var ErrNotLeader = errors.New("this replica does not hold the lease (another one took over)")

type leaseRow struct {
	Holder    string `db:"holder"`
	ElectedAt int64  `db:"elected_at"`
	ExpiresAt int64  `db:"expires_at"`
}

func (r leaseRow) lease(name string, ttl time.Duration) Lease {
	exp := time.UnixMilli(r.ExpiresAt).UTC()
	return Lease{Name: name, Holder: r.Holder, ElectedAt: time.UnixMilli(r.ElectedAt).UTC(), RenewedAt: exp.Add(-ttl), ExpiresAt: exp}
}

// Lead takes the lease `name` for holder for ttl from now, or renews it if
// holder has it. It reports whether holder holds it now, and the lease as
// it stands (the other holder's when not). A zero now means the database's
// clock.
//
// One statement takes or renews it (queries.sql, Lead): inserted when nobody
// holds it, renewed when the candidate holds it (even lapsed: nobody took it
// meanwhile, so nobody wrote under it), taken over when it lapsed; it returns
// the row only when the candidate holds it afterwards.
func (s *DB) Lead(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (Lease, bool, error) {
	var r leaseRow
	err := s.getW(ctx, &r, "Lead", name, holder, nullMS(now), ttl.Milliseconds())
	if err == nil {
		return r.lease(name, ttl), true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Lease{}, false, err
	}
	l, err := s.LeaseOf(ctx, name, ttl)
	return l, false, err
}

// Resign gives up holder's lease at once, so another candidate need not wait
// for it to lapse.
func (s *DB) Resign(ctx context.Context, name, holder string) error {
	_, err := s.execW(ctx, "Resign", name, holder)
	return err
}

// LeaseOf reads the lease `name` (a zero Lease when nobody holds it); ttl is
// the lease's duration, to tell when it was last renewed.
func (s *DB) LeaseOf(ctx context.Context, name string, ttl time.Duration) (Lease, error) {
	var r leaseRow
	err := s.get(ctx, &r, "LeaseOf", name)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{Name: name}, nil
	}
	if err != nil {
		return Lease{}, err
	}
	return r.lease(name, ttl), nil
}

// clearLeases forgets every lease, for a single-writer driver: SQLite's lock
// file guarantees that the process opening the database is the only one, so every stored lease belongs
// to a process that is gone, and waiting for it to lapse would only delay the
// start.
func (s *DB) clearLeases(ctx context.Context) error {
	_, err := s.execW(ctx, "ClearLeases")
	return err
}

// Fence fails with ErrNotLeader unless holder holds the lease `name`. A
// transaction that starts with it writes only while its process leads: a
// takeover changes the holder, so every later fenced transaction of the old
// leader fails.
//
// PostgreSQL reads the row FOR SHARE: a takeover, an UPDATE of it, waits for
// the transaction to end.
func (t *dbTx) Fence(name, holder string) error {
	var one int
	err := t.get(&one, "Fence", name, holder)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotLeader
	}
	return err
}

// SenderPause is the sender's stop after WhatsApp refused to take more
// messages (an expired token, a blocked account, the spam rate limit). It is
// stored so that every replica, and the next start, honours it.
type SenderPause struct {
	Reason    string    // "" when sending
	Until     time.Time // zero: until resumed
	UpdatedAt time.Time
}

// Active reports whether the pause stops sending at now.
func (p SenderPause) Active(now time.Time) bool {
	return p.Reason != "" && (p.Until.IsZero() || now.Before(p.Until))
}

// PauseSender records a pause (a zero until: until ResumeSender).
func (s *DB) PauseSender(ctx context.Context, reason string, until, at time.Time) error {
	_, err := s.execW(ctx, "PauseSender", reason, nullMS(until), ms(at))
	return err
}

// ResumeSender clears the pause recorded as reason ("" clears any): a pause
// recorded since for another reason stands.
func (s *DB) ResumeSender(ctx context.Context, reason string, at time.Time) error {
	_, err := s.execW(ctx, "ResumeSender", ms(at), reason)
	return err
}

// SenderPaused reads the sender's pause (Reason "" when none).
func (s *DB) SenderPaused(ctx context.Context) (SenderPause, error) {
	var r struct {
		Reason    string        `db:"reason"`
		Until     sql.NullInt64 `db:"until"`
		UpdatedAt int64         `db:"updated_at"`
	}
	err := s.get(ctx, &r, "SenderPaused")
	if errors.Is(err, sql.ErrNoRows) {
		return SenderPause{}, nil
	}
	if err != nil {
		return SenderPause{}, err
	}
	return SenderPause{Reason: r.Reason, Until: fromMS(r.Until), UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC()}, nil
}

// RecentSend is one message sent: to whom, when.
type RecentSend struct {
	Contact string
	At      time.Time
}

func (t *dbTx) RecentSends(since time.Time) ([]RecentSend, error) {
	var rows []struct {
		Contact string `db:"contact"`
		SentAt  int64  `db:"sent_at"`
	}
	if err := t.selectRows(&rows, "RecentSends", ms(since)); err != nil {
		return nil, err
	}
	out := make([]RecentSend, len(rows))
	for i, r := range rows {
		out[i] = RecentSend{Contact: r.Contact, At: time.UnixMilli(r.SentAt).UTC()}
	}
	return out, nil
}
