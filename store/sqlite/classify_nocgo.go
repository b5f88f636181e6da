//go:build !cgo

package sqlite

// dataError: without cgo there is no SQLite driver, so no error to classify.
func dataError(error) bool { return false }
