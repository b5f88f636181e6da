-- +goose Up
-- Counters of the funnel report, kept by triggers in the transaction that
-- changes what they count, per flow and hour of the runs' start
-- (started_at / 3600000): a report sums the hours of its period instead of
-- reading every run. They are not decremented when retention deletes old runs,
-- so a report of an old period stays whole.

-- Runs by start hour, entry ad, and where they are (status, step).
CREATE TABLE report_runs (
    flow_id    TEXT NOT NULL,
    hour       INTEGER NOT NULL,
    source_id  TEXT NOT NULL,
    status     TEXT NOT NULL,
    step       TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (flow_id, hour, source_id, status, step)
) WITHOUT ROWID;
INSERT INTO report_runs (flow_id, hour, source_id, status, step, n)
SELECT flow_id, started_at / 3600000, source_id, status, step, COUNT(*) FROM runs GROUP BY 1, 2, 3, 4, 5;

-- +goose StatementBegin
CREATE TRIGGER report_runs_insert AFTER INSERT ON runs BEGIN
    INSERT INTO report_runs (flow_id, hour, source_id, status, step, n)
    VALUES (NEW.flow_id, NEW.started_at / 3600000, NEW.source_id, NEW.status, NEW.step, 1)
    ON CONFLICT (flow_id, hour, source_id, status, step) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER report_runs_update AFTER UPDATE OF status, step ON runs
WHEN OLD.status IS NOT NEW.status OR OLD.step IS NOT NEW.step BEGIN
    UPDATE report_runs SET n = n - 1 WHERE flow_id = OLD.flow_id AND hour = OLD.started_at / 3600000
        AND source_id = OLD.source_id AND status = OLD.status AND step = OLD.step;
    INSERT INTO report_runs (flow_id, hour, source_id, status, step, n)
    VALUES (NEW.flow_id, NEW.started_at / 3600000, NEW.source_id, NEW.status, NEW.step, 1)
    ON CONFLICT (flow_id, hour, source_id, status, step) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- Steps reached, replied, delivered and read, by the runs' start hour.
CREATE TABLE report_steps (
    flow_id    TEXT NOT NULL,
    hour       INTEGER NOT NULL,
    step       TEXT NOT NULL,
    reached    INTEGER NOT NULL,
    replied    INTEGER NOT NULL,
    delivered  INTEGER NOT NULL,
    read       INTEGER NOT NULL,
    PRIMARY KEY (flow_id, hour, step)
) WITHOUT ROWID;
INSERT INTO report_steps (flow_id, hour, step, reached, replied, delivered, read)
SELECT flow_id, started_at / 3600000, step, COUNT(*), COUNT(replied_at), COUNT(delivered_at), COUNT(read_at) FROM run_steps GROUP BY 1, 2, 3;

-- +goose StatementBegin
CREATE TRIGGER report_steps_insert AFTER INSERT ON run_steps BEGIN
    INSERT INTO report_steps (flow_id, hour, step, reached, replied, delivered, read)
    VALUES (NEW.flow_id, NEW.started_at / 3600000, NEW.step, 1, NEW.replied_at IS NOT NULL, NEW.delivered_at IS NOT NULL, NEW.read_at IS NOT NULL)
    ON CONFLICT (flow_id, hour, step) DO UPDATE SET reached = reached + 1, replied = replied + excluded.replied,
        delivered = delivered + excluded.delivered, read = read + excluded.read;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER report_steps_replied AFTER UPDATE OF replied_at ON run_steps
WHEN OLD.replied_at IS NULL AND NEW.replied_at IS NOT NULL BEGIN
    UPDATE report_steps SET replied = replied + 1 WHERE flow_id = NEW.flow_id AND hour = NEW.started_at / 3600000 AND step = NEW.step;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER report_steps_delivered AFTER UPDATE OF delivered_at ON run_steps
WHEN OLD.delivered_at IS NULL AND NEW.delivered_at IS NOT NULL BEGIN
    UPDATE report_steps SET delivered = delivered + 1 WHERE flow_id = NEW.flow_id AND hour = NEW.started_at / 3600000 AND step = NEW.step;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER report_steps_read AFTER UPDATE OF read_at ON run_steps
WHEN OLD.read_at IS NULL AND NEW.read_at IS NOT NULL BEGIN
    UPDATE report_steps SET read = read + 1 WHERE flow_id = NEW.flow_id AND hour = NEW.started_at / 3600000 AND step = NEW.step;
END;
-- +goose StatementEnd

-- The counters replace this index; run_steps_report stays for the partial
-- hours at a period's edges.
DROP INDEX runs_report;
CREATE INDEX runs_started ON runs (flow_id, started_at);

-- +goose Down
DROP INDEX runs_started;
CREATE INDEX runs_report ON runs (flow_id, started_at, source_id, status, step);
DROP TRIGGER report_steps_read;
DROP TRIGGER report_steps_delivered;
DROP TRIGGER report_steps_replied;
DROP TRIGGER report_steps_insert;
DROP TABLE report_steps;
DROP TRIGGER report_runs_update;
DROP TRIGGER report_runs_insert;
DROP TABLE report_runs;
