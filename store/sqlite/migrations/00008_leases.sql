-- +goose Up
-- leases are named, expiring claims: the replica whose row it is leads
-- (processes events, fires timers and schedules, sends, cleans up) until its
-- lease lapses or it resigns. Every write of the leader's loops first reads
-- its row (Tx.Fence), so a replica that lost the lease writes nothing more.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    elected_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- sender_pause is the sender's stop after WhatsApp said so (190, 368,
-- 131048...): in the database so that whichever replica sends next honours it.
-- One row at most; reason '' means sending.
CREATE TABLE sender_pause (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    reason      TEXT NOT NULL,
    until       INTEGER,                     -- NULL: until resumed
    updated_at  INTEGER NOT NULL
);

-- A new leader refills each recipient's pair-rate bucket from the messages
-- sent in the last minute (Tx.RecentSends), so a takeover does not grant a
-- fresh burst.
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- +goose Down
DROP INDEX outbox_sent;
DROP TABLE sender_pause;
DROP TABLE leases;
