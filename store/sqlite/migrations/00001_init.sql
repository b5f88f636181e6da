-- +goose Up
-- Times are Unix milliseconds (UTC). JSON columns hold objects encoded by the engine.

CREATE TABLE contacts (
    wa_id            TEXT PRIMARY KEY,
    name             TEXT NOT NULL DEFAULT '',
    timezone         TEXT NOT NULL DEFAULT '',
    attributes       TEXT NOT NULL DEFAULT '{}',
    tags             TEXT NOT NULL DEFAULT '[]',
    phone_number_id  TEXT NOT NULL DEFAULT '',  -- the business number the contact last wrote to
    last_inbound_at  INTEGER,                   -- the last inbound message's own timestamp
    consent          TEXT NOT NULL DEFAULT '',  -- '' unknown, 'in' opted in, 'out' opted out
    consent_at       INTEGER,
    consent_source   TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE flow_versions (
    id          INTEGER PRIMARY KEY,
    flow_id     TEXT NOT NULL,
    hash        TEXT NOT NULL,
    file        TEXT NOT NULL DEFAULT '',
    source      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (flow_id, hash)
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    contact     TEXT NOT NULL REFERENCES contacts (wa_id),
    flow_id     TEXT NOT NULL,
    version_id  INTEGER NOT NULL REFERENCES flow_versions (id),
    step        TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,               -- active, waiting, waiting_reply, completed, expired, cancelled, failed
    vars        TEXT NOT NULL DEFAULT '{}',
    entry       TEXT NOT NULL DEFAULT '{}',
    reply       TEXT NOT NULL DEFAULT '{}',
    event       TEXT NOT NULL DEFAULT '{}',
    wait_seq    INTEGER NOT NULL DEFAULT 0,   -- bumps on every pause; timers carry it to detect staleness
    step_seq    INTEGER NOT NULL DEFAULT 0,   -- counts steps taken; outbox keys use it
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    end_reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_contact_live ON runs (contact, id) WHERE ended_at IS NULL;
CREATE INDEX runs_flow_status ON runs (flow_id, status);

CREATE TABLE timers (
    id       INTEGER PRIMARY KEY,
    due_at   INTEGER NOT NULL,
    run_id   INTEGER NOT NULL,
    kind     TEXT NOT NULL,                 -- wait, reply_timeout
    seq      INTEGER NOT NULL               -- the run's wait_seq when set
);
CREATE INDEX timers_due ON timers (due_at, id);

CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,     -- message id, status id + status, or event key
    kind          TEXT NOT NULL,            -- message, status, event
    contact       TEXT NOT NULL DEFAULT '',
    payload       BLOB NOT NULL,
    received_at   INTEGER NOT NULL,
    processed_at  INTEGER,
    result        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX inbox_pending ON inbox (id) WHERE processed_at IS NULL;

CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY,
    key                TEXT NOT NULL UNIQUE,   -- run id / step sequence: a step sends once
    run_id             INTEGER NOT NULL,
    flow_id            TEXT NOT NULL,
    step               TEXT NOT NULL,
    contact            TEXT NOT NULL,
    phone_number_id    TEXT NOT NULL DEFAULT '',
    kind               TEXT NOT NULL,          -- freeform, template
    category           TEXT NOT NULL DEFAULT '',
    assume_opt_in      INTEGER NOT NULL DEFAULT 0,
    payload            BLOB NOT NULL,
    fallback           BLOB,
    fallback_category  TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL,          -- pending, claimed, sending, sent, delivered, read, failed, window_closed, opted_out, no_consent, unknown
    sent_as            TEXT NOT NULL DEFAULT '',
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER NOT NULL,
    error_code         INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT NOT NULL DEFAULT '',
    provider_id        TEXT NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    sent_at            INTEGER,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_contact_open ON outbox (contact, id) WHERE status IN ('pending', 'claimed', 'sending');
CREATE INDEX outbox_provider ON outbox (provider_id) WHERE provider_id != '';

CREATE TABLE message_statuses (
    id           INTEGER PRIMARY KEY,
    outbox_id    INTEGER,
    provider_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    error_code   INTEGER NOT NULL DEFAULT 0,
    payload      BLOB NOT NULL,
    UNIQUE (provider_id, status)
);

CREATE TABLE schedules (
    flow_id    TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,                -- cron spec and time zone the next time was computed with
    next_at    INTEGER NOT NULL,             -- next fire time
    firing_at  INTEGER,                      -- set while a fire is in progress
    cursor     TEXT NOT NULL DEFAULT ''      -- last contact handled by the fire in progress
);

-- +goose Down
DROP TABLE schedules;
DROP TABLE message_statuses;
DROP TABLE outbox;
DROP TABLE inbox;
DROP TABLE timers;
DROP TABLE runs;
DROP TABLE flow_versions;
DROP TABLE contacts;
