-- +goose Up
-- The PostgreSQL twin of store/sqlite/migrations/00008_leases.sql.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    elected_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE sender_pause (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    reason      TEXT NOT NULL,
    until       BIGINT,
    updated_at  BIGINT NOT NULL
);

CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- +goose Down
DROP INDEX outbox_sent;
DROP TABLE sender_pause;
DROP TABLE leases;
