package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestClaimMode: a database is marked by the first daemon that opens it, and
// the other kind is refused; an unmarked database that already holds contacts
// was used before marks existed, by production.
func TestClaimMode(t *testing.T) {
	ctx := context.Background()
	open := func(path string) *DB {
		st, err := Open(ctx, testDSN(t, path), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name        string
		first, then string
		used        bool
		wantErr     bool
	}{
		{"dev then dev", ModeDev, ModeDev, false, false},
		{"production then production", ModeProduction, ModeProduction, false, false},
		{"production then dev", ModeProduction, ModeDev, false, true},
		{"dev then production", ModeDev, ModeProduction, false, true},
		{"unmarked but used, then dev", "", ModeDev, true, true},
		{"unmarked and empty, then dev", "", ModeDev, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := open(filepath.Join(dir, c.name+".db"))
			if c.first != "" {
				if err := st.ClaimMode(ctx, c.first); err != nil {
					t.Fatal(err)
				}
			}
			if c.used {
				if err := st.SetTimezone(ctx, "15550001234", "", time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			err := st.ClaimMode(ctx, c.then)
			if got := errors.Is(err, ErrMode); got != c.wantErr {
				t.Fatalf("err %v, want refused %v", err, c.wantErr)
			}
		})
	}
	st := open(filepath.Join(dir, "prod-erase.db"))
	st.ClaimMode(ctx, ModeProduction)
	if err := st.EraseSandbox(ctx); !errors.Is(err, ErrMode) {
		t.Fatalf("erasing a production database must be refused: %v", err)
	}
}
