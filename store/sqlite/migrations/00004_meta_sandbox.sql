-- +goose Up
-- meta holds facts about the database itself: which kind of daemon uses it
-- (`mode`: production or dev), and the sandbox's clock offset.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- sandbox_sends is what the sandbox's simulated Cloud API saw when it accepted a
-- message: the window as Meta counts it at that moment, recorded once, so the
-- page shows what the window allowed then, not what it is now.
CREATE TABLE sandbox_sends (
    provider_id      TEXT PRIMARY KEY,
    contact          TEXT NOT NULL,
    at               INTEGER NOT NULL,
    type             TEXT NOT NULL,
    window_open      INTEGER NOT NULL,
    last_inbound_at  INTEGER
);
CREATE INDEX sandbox_sends_contact ON sandbox_sends (contact);
CREATE INDEX inbox_contact ON inbox (contact, id);

-- +goose Down
DROP INDEX inbox_contact;
DROP TABLE sandbox_sends;
DROP TABLE meta;
