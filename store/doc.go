// Package store persists funnel's state: contacts, flow versions, runs, timers, the
// inbox of webhook events, the outbox of messages to send, and message statuses.
//
// The engine talks to the Store interface; DB implements it on any database
// through a Driver, picked from the DSN by Open: store/sqlite (the embedded
// default, mattn/go-sqlite3) or store/postgres (a postgres:// URL,
// jackc/pgx/v5). A driver holds that database's SQL — queries.sql,
// a list of named queries, and goose migrations, both embedded — and connects;
// everything else (transactions, batching, scanning, guarded transitions) is
// this package's, the same Go code for every driver. docs/ARCHITECTURE.md
// ("Storage drivers") has the rules for adding a query or a migration: the same
// name, arguments and migration number in every driver.
//
// Writes happen in batches inside one transaction (Store.Write): the engine loads
// what a batch of events needs with a few IN (…) queries, works in memory, and
// flushes with multi-row statements. That is what lets one writer process tens of
// thousands of events per second while every event's effects commit atomically.
// A contact's key (contacts.wa_id) never changes; the table contact_ids maps
// every other WhatsApp id of the person (phone number, BSUIDs, parent BSUID,
// keys of merged contacts) to it, so an event finds the contact by any id.
// On SQLite exactly one process may write a database at a time; Open takes an
// exclusive lock file beside it.
//
// Every change of stored state is a guarded transition (ChangeOutbox: an UPDATE
// of the columns the transition owns, WHERE the status is one it may move
// from), never a write-back of a copy read in an earlier transaction: the
// sender and the status webhooks work on the same rows from different
// transactions, and the guard is what keeps them correct on every database and
// from several processes. Ids come from the database (Tx.NewID). Encoders
// return errors; a write refused because of what it carries is ErrInvalid, so
// the engine can set the event that produced it aside instead of retrying it
// for ever. History is deleted by age through indexes (the Purge methods,
// driven by the engine's retention settings), and Due tells the engine's idle
// loops from the read pool whether they have anything to write.
package store
