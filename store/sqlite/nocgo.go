//go:build !cgo

package sqlite

// sqliteBuilt: without cgo the SQLite driver is a stub that fails every open.
// The validator needs no database, so a CGO_ENABLED=0 build (go install on a
// laptop without a C compiler) still validates, explains and graphs flows.
const sqliteBuilt = false
