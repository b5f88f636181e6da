package sqlite

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/gofrs/flock"
)

// afterFlock, when set by a test, runs between taking a lock and checking it.
var afterFlock func(name string)

// lockFile creates and locks the lock file beside the database. Close removes it,
// so a process that opened the file just before it was removed may hold a lock
// on a file no longer in the folder: the lock counts only if the file locked is
// still the one at name, otherwise it tries again with the new one.
func lockFile(name string) (*flock.Flock, error) {
	for attempt := 0; ; attempt++ {
		f := flock.New(name, flock.SetPermissions(FileMode))
		ok, err := f.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if !ok {
			return nil, fmt.Errorf("%s: %w", strings.TrimSuffix(name, ".lock"), ErrLocked)
		}
		if afterFlock != nil {
			afterFlock(name)
		}
		held, err1 := f.Stat()
		current, err2 := os.Stat(name)
		if err1 == nil && err2 == nil && os.SameFile(held, current) {
			return f, nil
		}
		f.Close()
		if attempt == 10 {
			return nil, fmt.Errorf("%s: %w", strings.TrimSuffix(name, ".lock"), ErrLocked)
		}
	}
}

type lockCloser struct{ lock *flock.Flock }

// Close removes the lock file while still holding it, then releases it: a
// stale lock file never outlives a clean stop (one left by a crash is
// harmless, the lock died with its process). Windows refuses to remove an open
// file: there it stays, harmless too.
func (l *lockCloser) Close() error {
	if l.lock == nil {
		return nil
	}
	var errs []error
	if err := os.Remove(l.lock.Path()); err != nil && !errors.Is(err, os.ErrNotExist) && runtime.GOOS != "windows" {
		errs = append(errs, err)
	}
	errs = append(errs, l.lock.Close())
	l.lock = nil
	return errors.Join(errs...)
}
