-- +goose Up
-- The funnel report counts a flow's runs by the period they started in, so
-- every count goes through an index that starts with (flow_id, started_at).

-- The click-to-WhatsApp ad a run entered from (its entry referral), set when the
-- run starts and never changed: the report groups runs by ad without reading
-- the entry JSON of each.
ALTER TABLE runs ADD COLUMN source_id TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN headline TEXT NOT NULL DEFAULT '';
UPDATE runs SET source_id = COALESCE(json_extract(entry, '$.source_id'), ''),
                headline = COALESCE(json_extract(entry, '$.headline'), '')
 WHERE json_valid(entry) AND json_extract(entry, '$.source_id') IS NOT NULL;
-- Entered, completed, by ad and where runs stopped: one scan of this index.
CREATE INDEX runs_report ON runs (flow_id, started_at, source_id, status, step);

-- The steps each run executed, once per run and step (a loop or a replayed
-- batch re-executes a step without adding a row), written in the transaction
-- that executed the step. flow_id and started_at are the run's, so counts by
-- flow and period need no join. replied_at: the contact answered the step (a
-- wait_for_reply); delivered_at/read_at: the step's message was delivered/read.
CREATE TABLE run_steps (
    run_id        INTEGER NOT NULL,
    step          TEXT NOT NULL,
    flow_id       TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    reached_at    INTEGER NOT NULL,
    replied_at    INTEGER,
    delivered_at  INTEGER,
    read_at       INTEGER,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE INDEX run_steps_report ON run_steps (flow_id, started_at, step, replied_at, delivered_at, read_at);

-- +goose Down
DROP TABLE run_steps;
DROP INDEX runs_report;
ALTER TABLE runs DROP COLUMN headline;
ALTER TABLE runs DROP COLUMN source_id;
