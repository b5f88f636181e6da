-- +goose Up
-- The PostgreSQL twin of store/sqlite/migrations/00007_marketing_limits.sql.
ALTER TABLE outbox ADD COLUMN limit_retries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN allowance BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_allowance ON outbox (next_attempt_at) WHERE status = 'pending' AND allowance = 1;
CREATE INDEX outbox_limited ON outbox (flow_id, contact) WHERE error_code = 131049 OR limit_retries > 0;

CREATE TABLE reached (
    contact  TEXT PRIMARY KEY,
    at       BIGINT NOT NULL
);
CREATE INDEX reached_at ON reached (at);

-- +goose Down
DROP INDEX reached_at;
DROP TABLE reached;
DROP INDEX outbox_limited;
DROP INDEX outbox_allowance;
ALTER TABLE outbox DROP COLUMN allowance;
ALTER TABLE outbox DROP COLUMN limit_retries;
