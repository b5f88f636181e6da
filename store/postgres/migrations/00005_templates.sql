-- +goose Up
-- The PostgreSQL twin of store/sqlite/migrations/00005_templates.sql.
CREATE TABLE template_states (
    name         TEXT NOT NULL,
    language     TEXT NOT NULL,
    template_id  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    event        TEXT NOT NULL DEFAULT '',
    status_at    BIGINT,
    category     TEXT NOT NULL DEFAULT '',
    category_at  BIGINT,
    quality      TEXT NOT NULL DEFAULT '',
    quality_at   BIGINT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (name, language)
);

CREATE TABLE phone_quality (
    display_phone_number  TEXT PRIMARY KEY,
    event                 TEXT NOT NULL,
    current_limit         TEXT NOT NULL DEFAULT '',
    old_limit             TEXT NOT NULL DEFAULT '',
    max_daily             TEXT NOT NULL DEFAULT '',
    at                    BIGINT NOT NULL
);

ALTER TABLE outbox ADD COLUMN template TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_held ON outbox (template, id) WHERE status = 'held';

-- +goose Down
DROP INDEX outbox_held;
ALTER TABLE outbox DROP COLUMN template;
DROP TABLE phone_quality;
DROP TABLE template_states;
