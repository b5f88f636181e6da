-- +goose Up
-- The PostgreSQL twin of store/sqlite/migrations/00006_report.sql.
ALTER TABLE runs ADD COLUMN source_id TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN headline TEXT NOT NULL DEFAULT '';
UPDATE runs SET source_id = COALESCE(entry::jsonb ->> 'source_id', ''),
                headline = COALESCE(entry::jsonb ->> 'headline', '')
 WHERE (entry::jsonb ->> 'source_id') IS NOT NULL;
CREATE INDEX runs_report ON runs (flow_id, started_at, source_id, status, step);

CREATE TABLE run_steps (
    run_id        BIGINT NOT NULL,
    step          TEXT NOT NULL,
    flow_id       TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    reached_at    BIGINT NOT NULL,
    replied_at    BIGINT,
    delivered_at  BIGINT,
    read_at       BIGINT,
    PRIMARY KEY (run_id, step)
);
CREATE INDEX run_steps_report ON run_steps (flow_id, started_at, step, replied_at, delivered_at, read_at);

-- +goose Down
DROP TABLE run_steps;
DROP INDEX runs_report;
ALTER TABLE runs DROP COLUMN headline;
ALTER TABLE runs DROP COLUMN source_id;
