package store

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/funnel-dev/funnel/store/sqlite"
	"github.com/pressly/goose/v3"
)

// A database created by the schema before contact ids (migration 00001 only),
// with contacts, runs and messages, keeps every one of them when it is opened
// by this version, and each contact is found by its number.
func TestMigrationKeepsContactsAndRuns(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	first, err := fs.ReadFile(sqlite.Driver{}.SQL(), "migrations/00001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fstest.MapFS{"00001_init.sql": {Data: first}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO contacts (wa_id, name, tags, consent, consent_at, last_inbound_at, created_at, updated_at) VALUES
			('16505551234', 'Ana', '["vip"]', 'in', 1000, 2000, 1, 1), ('351912345678', 'Rui', '[]', 'out', 1000, 2000, 1, 1)`,
		`INSERT INTO flow_versions (id, flow_id, hash, source, created_at) VALUES (1, 'f', 'h', 'x', 1)`,
		`INSERT INTO runs (id, contact, flow_id, version_id, status, started_at, updated_at, ended_at) VALUES
			(1, '16505551234', 'f', 1, 'waiting', 1, 1, NULL), (2, '351912345678', 'f', 1, 'completed', 1, 1, 5)`,
		`INSERT INTO outbox (id, key, run_id, flow_id, step, contact, kind, payload, status, next_attempt_at, created_at, updated_at) VALUES
			(1, '1/1', 1, 'f', 's', '16505551234', 'freeform', '{}', 'sent', 1, 1, 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(ctx)
	if err != nil || st.Contacts != 2 || st.LiveRuns != 1 {
		t.Fatalf("after migration: %+v, %v", st, err)
	}
	c, err := s.Contact(ctx, "16505551234")
	if err != nil || c == nil {
		t.Fatalf("contact by number: %v %v", c, err)
	}
	if c.Phone != "16505551234" || c.Name != "Ana" || !c.HasTag("vip") || c.Consent != ConsentIn || c.UserID != "" {
		t.Errorf("migrated contact %+v", c)
	}
	runs, _ := s.RunsOf(ctx, "16505551234", 10)
	out, _ := s.OutboxOf(ctx, "16505551234", 10)
	if len(runs) != 1 || len(out) != 1 {
		t.Errorf("runs %d, outbox %d", len(runs), len(out))
	}
	err = s.Write(ctx, func(tx Tx) error {
		ids, err := tx.ContactIDs([]string{"16505551234", "351912345678", "US.1"})
		if err != nil {
			return err
		}
		if len(ids) != 2 || ids["351912345678"] != "351912345678" {
			t.Errorf("ids %v", ids)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestContactIDsLinkAndMerge(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	err := s.Write(ctx, func(tx Tx) error {
		cs := []*Contact{
			{WaID: "US.1", UserID: "US.1", Username: "@ana", CreatedAt: t0, UpdatedAt: t0},
			{WaID: "16505551234", Phone: "16505551234", CreatedAt: t0, UpdatedAt: t0},
		}
		if err := tx.SaveContacts(cs); err != nil {
			return err
		}
		if err := tx.LinkContactIDs(map[string]string{"US.1": "US.1", "US.ENT.9": "US.1", "16505551234": "16505551234"}); err != nil {
			return err
		}
		v := &FlowVersion{FlowID: "f", Hash: "h", Source: []byte("x"), CreatedAt: t0}
		if err := tx.InsertFlowVersion(v); err != nil {
			return err
		}
		if err := tx.SaveRuns([]*Run{{ID: tx.NewID("runs"), Contact: "16505551234", FlowID: "f", VersionID: v.ID, Status: RunWaiting, StartedAt: t0, UpdatedAt: t0}}); err != nil {
			return err
		}
		return tx.MergeContact("16505551234", "US.1")
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"US.1", "US.ENT.9", "16505551234", "@ana", "ana"} {
		c, err := s.Contact(ctx, id)
		if err != nil || c == nil || c.WaID != "US.1" {
			t.Errorf("Contact(%q) = %+v, %v; want the contact keyed US.1", id, c, err)
		}
	}
	if runs, _ := s.RunsOf(ctx, "US.1", 10); len(runs) != 1 {
		t.Errorf("runs moved: %d", len(runs))
	}
	if st, _ := s.Stats(ctx); st.Contacts != 1 {
		t.Errorf("%d contacts after the merge", st.Contacts)
	}
	if c, _ := s.Contact(ctx, "US.404"); c != nil {
		t.Errorf("unknown id found %+v", c)
	}
}

// An id linked to a contact wins over a contact keyed by the same id (a row
// saved without ids, as by an import), and a key alone still resolves.
func TestContactIDsPreferLinks(t *testing.T) {
	s := openTest(t)
	err := s.Write(context.Background(), func(tx Tx) error {
		if err := tx.SaveContacts([]*Contact{{WaID: "16505551234", CreatedAt: t0, UpdatedAt: t0},
			{WaID: "16505559999", CreatedAt: t0, UpdatedAt: t0}, {WaID: "US.1", UserID: "US.1", CreatedAt: t0, UpdatedAt: t0}}); err != nil {
			return err
		}
		if err := tx.LinkContactIDs(map[string]string{"16505551234": "US.1", "US.1": "US.1"}); err != nil {
			return err
		}
		ids, err := tx.ContactIDs([]string{"16505551234", "16505559999", "US.1", "US.2"})
		if err != nil {
			return err
		}
		want := map[string]string{"16505551234": "US.1", "16505559999": "16505559999", "US.1": "US.1"}
		if len(ids) != len(want) {
			t.Errorf("ids %v, want %v", ids, want)
		}
		for k, v := range want {
			if ids[k] != v {
				t.Errorf("%s → %q, want %q", k, ids[k], v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
