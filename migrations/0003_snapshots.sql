-- Volume snapshots the host takes and tracks (Cinder's snapshots table, trimmed):
-- a point-in-time copy of the volume's file under the data dir. Backups with a
-- snapshot_id read the copy; the snapshot's created_at is their data_timestamp.
CREATE TABLE snapshots (
    id          TEXT   NOT NULL PRIMARY KEY,
    project_id  TEXT   NOT NULL,
    user_id     TEXT   NOT NULL,
    volume_id   TEXT   NOT NULL,
    name        TEXT,
    description TEXT,
    status      TEXT   NOT NULL,
    size        BIGINT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    path        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT
);

CREATE INDEX snapshots_volume_id ON snapshots (volume_id);
CREATE INDEX snapshots_project_created ON snapshots (project_id, created_at);
