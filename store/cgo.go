//go:build cgo

package store

// sqliteBuilt: the SQLite driver (mattn/go-sqlite3) is C, compiled with cgo.
const sqliteBuilt = true
