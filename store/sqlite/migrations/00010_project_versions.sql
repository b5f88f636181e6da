-- +goose Up
-- A project version is the set of flow versions the daemon loaded together. A
-- run keeps the set it started under, so its start_flow starts the target's
-- version from that set, not whatever a reload made current meanwhile: the
-- validator checked caller and target together, in one set.
CREATE TABLE project_versions (
    id          INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    flows       TEXT NOT NULL,        -- JSON object: flow id -> flow_versions.id
    created_at  INTEGER NOT NULL
);
-- 0: a run started before sets were recorded (its start_flow takes the current version).
ALTER TABLE runs ADD COLUMN project_version_id INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE runs DROP COLUMN project_version_id;
DROP TABLE project_versions;
