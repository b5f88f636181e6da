-- +goose Up
-- SQLite keeps hourly report counters by triggers (its 00011). PostgreSQL does
-- not: with several replicas, shared counter rows would make every writer wait
-- on the same rows. Its ReportRunCounts and ReportStepCounts read the indexed
-- runs and run_steps tables instead (runs_report, run_steps_report). This
-- migration keeps the two drivers' version numbers aligned.
SELECT 1;

-- +goose Down
SELECT 1;
