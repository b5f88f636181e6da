-- +goose Up
-- Outcomes: what flows achieved (conversions, split variants) and the durable
-- outbox of conversions sent to Meta's Conversions API. Times are Unix
-- milliseconds (UTC); ids come from the database (INTEGER PRIMARY KEY).

-- The contact's latest click-to-WhatsApp click: the ad (source_id) and Meta's
-- click id (ctwa_clid) of the most recent inbound message that carried a
-- referral, and when it was written. A conversion copies it, and the
-- Conversions API attributes the conversion to that click (7 days at most).
CREATE TABLE contact_clicks (
    contact    TEXT PRIMARY KEY,           -- contacts.wa_id
    source_id  TEXT NOT NULL DEFAULT '',
    ctwa_clid  TEXT NOT NULL DEFAULT '',
    headline   TEXT NOT NULL DEFAULT '',
    at         INTEGER NOT NULL            -- the message's own timestamp
) WITHOUT ROWID;

-- One row per run and `convert` step: a step re-entered by a loop, or replayed
-- after a crash, converts once (INSERT … ON CONFLICT (run_id, step) DO NOTHING).
-- source_id, ctwa_clid and clicked_at are the contact's latest click when the
-- conversion happened (empty/NULL without one); variants is a JSON object
-- {split step: variant} of the splits the run had passed.
CREATE TABLE conversions (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL,
    contact     TEXT NOT NULL,
    flow_id     TEXT NOT NULL,
    step        TEXT NOT NULL,
    event       TEXT NOT NULL,              -- a Conversions API standard event name
    value       REAL,                       -- NULL when the step has no value
    currency    TEXT NOT NULL DEFAULT '',   -- ISO 4217, '' without a value
    source_id   TEXT NOT NULL DEFAULT '',
    ctwa_clid   TEXT NOT NULL DEFAULT '',
    clicked_at  INTEGER,
    variants    TEXT NOT NULL DEFAULT '{}',
    at          INTEGER NOT NULL,
    UNIQUE (run_id, step)
);
CREATE INDEX conversions_flow_at ON conversions (flow_id, at);
CREATE INDEX conversions_contact ON conversions (contact);

-- The variant each split step assigned to a run (once per run and step). flow_id
-- is the run's flow, so a split's counts group without a join to runs.
CREATE TABLE run_variants (
    run_id   INTEGER NOT NULL,
    step     TEXT NOT NULL,
    variant  TEXT NOT NULL,
    flow_id  TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE INDEX run_variants_flow ON run_variants (flow_id, step, variant);

-- The Conversions API outbox: one row per conversion sent (or expired), with a
-- deterministic event_id that never changes (Meta deduplicates on it, so a
-- row sent again after a crash counts once). Statuses: queued (due at next_at),
-- sending (its API call may have started), sent, failed (permanent; error holds
-- Meta's message), expired (older than the attribution window: not sent).
-- Every change is a guarded transition (UPDATE … WHERE id = ? AND status IN …).
CREATE TABLE capi_events (
    id             INTEGER PRIMARY KEY,
    conversion_id  INTEGER NOT NULL UNIQUE,
    event_id       TEXT NOT NULL UNIQUE,
    dataset_id     TEXT NOT NULL,
    status         TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_at        INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,        -- the click's attribution window ends: not sent after it
    error_code     INTEGER NOT NULL DEFAULT 0,
    error          TEXT NOT NULL DEFAULT '',
    body           BLOB NOT NULL,           -- the event object of the request's data list (JSON)
    created_at     INTEGER NOT NULL,
    sent_at        INTEGER,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX capi_events_queued ON capi_events (next_at, id) WHERE status = 'queued';
CREATE INDEX capi_events_sending ON capi_events (id) WHERE status = 'sending';

-- +goose Down
DROP TABLE capi_events;
DROP TABLE run_variants;
DROP TABLE conversions;
DROP TABLE contact_clicks;
