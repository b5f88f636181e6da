//go:build cgo

package sqlite

// sqliteBuilt: the SQLite driver (mattn/go-sqlite3) is C, compiled with cgo.
const sqliteBuilt = true
