-- +goose Up
-- The PostgreSQL twin of store/sqlite/migrations/00003_retention.sql.
CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX timers_run ON timers (run_id);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX message_statuses_at ON message_statuses (at);
CREATE INDEX inbox_processed ON inbox (processed_at) WHERE processed_at IS NOT NULL;

ALTER TABLE flow_versions ADD COLUMN templates TEXT NOT NULL DEFAULT '';

ALTER TABLE outbox ADD COLUMN resends BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_unknown ON outbox (updated_at) WHERE status = 'unknown' AND resends = 0;

-- +goose Down
DROP INDEX outbox_unknown;
ALTER TABLE outbox DROP COLUMN resends;
ALTER TABLE flow_versions DROP COLUMN templates;
DROP INDEX inbox_processed;
DROP INDEX message_statuses_at;
DROP INDEX outbox_created;
DROP INDEX timers_run;
DROP INDEX runs_ended;
