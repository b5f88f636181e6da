-- +goose Up
-- The PostgreSQL twin of store/sqlite/migrations/00004_meta_sandbox.sql.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE sandbox_sends (
    provider_id      TEXT PRIMARY KEY,
    contact          TEXT NOT NULL,
    at               BIGINT NOT NULL,
    type             TEXT NOT NULL,
    window_open      BOOLEAN NOT NULL,
    last_inbound_at  BIGINT
);
CREATE INDEX sandbox_sends_contact ON sandbox_sends (contact);
CREATE INDEX inbox_contact ON inbox (contact, id);

-- +goose Down
DROP INDEX inbox_contact;
DROP TABLE sandbox_sends;
DROP TABLE meta;
