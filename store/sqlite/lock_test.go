package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A lock taken on a lock file that another process removed meanwhile (its
// Close) does not count: the file now in the folder is locked instead.
func TestLockFileReplacedIsNotALock(t *testing.T) {
	name := filepath.Join(t.TempDir(), "funnel.db.lock")
	removed := false
	afterFlock = func(name string) {
		if !removed {
			removed = true
			os.Remove(name)
		}
	}
	defer func() { afterFlock = nil }()
	f, err := lockFile(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	held, _ := f.Stat()
	current, err := os.Stat(name)
	if err != nil || !os.SameFile(held, current) {
		t.Fatalf("the lock is on a file no longer in the folder (%v)", err)
	}
	if _, err := lockFile(name); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
}
