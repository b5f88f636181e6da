//go:build cgo

package store

import (
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"
)

// classify marks the errors that come from the data written rather than from
// the database (a broken constraint, a value too big or of the wrong type) as
// ErrInvalid: they fail again on every retry.
func classify(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrConstraint, sqlite3.ErrTooBig, sqlite3.ErrMismatch, sqlite3.ErrRange:
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return err
}
