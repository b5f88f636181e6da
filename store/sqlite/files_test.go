package sqlite

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirWarning(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o700, false}, {0o750, false}, {0o770, true}, {0o777, true}, {os.ModeSticky | 0o777, false}} {
		if err := os.Chmod(dir, tc.mode); err != nil {
			t.Fatal(err)
		}
		if got := DirWarning(filepath.Join(dir, "funnel.db")) != ""; got != tc.warn {
			t.Errorf("mode %v: warning %v, want %v", tc.mode, got, tc.warn)
		}
	}
	os.Chmod(dir, 0o700)
}
