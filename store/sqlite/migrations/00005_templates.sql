-- +goose Up
-- What Meta last said about each template (message_template_status_update,
-- template_category_update, message_template_quality_update webhooks, and the
-- errors 132015/132016 at send time), per name and language. Each attribute
-- keeps the time it changed: an older webhook delivered late never overwrites
-- a newer one.
CREATE TABLE template_states (
    name         TEXT NOT NULL,
    language     TEXT NOT NULL,
    template_id  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT '',   -- APPROVED, PAUSED, DISABLED, REJECTED, …; '' unknown
    reason       TEXT NOT NULL DEFAULT '',
    event        TEXT NOT NULL DEFAULT '',   -- the last status event (FLAGGED, REINSTATED, … as well)
    status_at    INTEGER,
    category     TEXT NOT NULL DEFAULT '',   -- '' unknown: the flow version's category applies
    category_at  INTEGER,
    quality      TEXT NOT NULL DEFAULT '',   -- GREEN, YELLOW, RED, UNKNOWN
    quality_at   INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (name, language)
);

-- phone_number_quality_update webhooks: the last one per business number.
CREATE TABLE phone_quality (
    display_phone_number  TEXT PRIMARY KEY,
    event                 TEXT NOT NULL,
    current_limit         TEXT NOT NULL DEFAULT '',
    old_limit             TEXT NOT NULL DEFAULT '',
    max_daily             TEXT NOT NULL DEFAULT '',
    at                    INTEGER NOT NULL
);

-- The template a message sends ("name:language"; for a free-form message, its
-- fallback's), so a paused template's queued messages can be held and released.
ALTER TABLE outbox ADD COLUMN template TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_held ON outbox (template, id) WHERE status = 'held';

-- +goose Down
DROP INDEX outbox_held;
ALTER TABLE outbox DROP COLUMN template;
DROP TABLE phone_quality;
DROP TABLE template_states;
