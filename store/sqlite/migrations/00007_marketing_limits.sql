-- +goose Up
-- 131049 (Meta's per-user marketing limit): how many times the message was
-- sent once more after it (at most once, when marketing_retry_after is set).
ALTER TABLE outbox ADD COLUMN limit_retries INTEGER NOT NULL DEFAULT 0;
-- 1 while a pending message waits for the messaging limit's allowance.
ALTER TABLE outbox ADD COLUMN allowance INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_allowance ON outbox (next_attempt_at) WHERE status = 'pending' AND allowance = 1;
CREATE INDEX outbox_limited ON outbox (flow_id, contact) WHERE error_code = 131049 OR limit_retries > 0;

-- The unique users business-initiated messages reached (the messaging limit
-- counts them in a rolling 24h): each contact with the last time.
CREATE TABLE reached (
    contact  TEXT PRIMARY KEY,
    at       INTEGER NOT NULL
);
CREATE INDEX reached_at ON reached (at);

-- +goose Down
DROP INDEX reached_at;
DROP TABLE reached;
DROP INDEX outbox_limited;
DROP INDEX outbox_allowance;
ALTER TABLE outbox DROP COLUMN allowance;
ALTER TABLE outbox DROP COLUMN limit_retries;
