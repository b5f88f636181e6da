package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FileMode is the mode of the files funnel keeps beside a database: the
// database, its WAL and shared-memory files, and the lock file. They hold phone
// numbers, names and consent, and whoever can open the lock file can hold it
// and keep the daemon from starting: only the owner may read or write them.
const FileMode fs.FileMode = 0o600

// sideFiles are the suffixes of the files SQLite and funnel add beside a
// database.
var sideFiles = []string{"-wal", "-shm", "-journal", ".lock"}

// makePrivate creates the database file with FileMode when it does not exist
// yet (SQLite gives the WAL and shared-memory files the mode of the database,
// so they follow), and takes group and other permissions away from the
// database and its side files left by an earlier version.
func makePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	for _, p := range append([]string{path}, sidePaths(path)...) {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		if fi.Mode().Perm()&^FileMode != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&FileMode); err != nil {
				return fmt.Errorf("%s is readable by other users and cannot be made private: %w", p, err)
			}
		}
	}
	return nil
}

func sidePaths(path string) []string {
	out := make([]string, len(sideFiles))
	for i, s := range sideFiles {
		out[i] = path + s
	}
	return out
}

// DirWarning describes what is unsafe about the directory that holds the
// database: other users who can write to it can delete or replace the
// database and its lock file whatever the files' own modes. It returns "" for
// a directory only its owner (or root) can change.
func DirWarning(path string) string {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Sprintf("the database directory %s is writable by other users (mode %v): they can replace the database; make it 0700 or 0750 and owned by the daemon's user", dir, fi.Mode().Perm())
	}
	return ""
}
