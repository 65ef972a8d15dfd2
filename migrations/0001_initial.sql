-- Holdfast's initial schema. One portable set for SQLite and PostgreSQL:
-- only TEXT and BIGINT columns (timestamps are microseconds since the epoch,
-- booleans are 0/1, since sqlx's Any driver cannot decode SQLite BOOLEAN),
-- no AUTOINCREMENT/SERIAL, and Cinder's column names.

CREATE TABLE volumes (
    id              TEXT   NOT NULL PRIMARY KEY,
    project_id      TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    name            TEXT,
    description     TEXT,
    status          TEXT   NOT NULL,
    previous_status TEXT,
    size            BIGINT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    path            TEXT   NOT NULL,
    managed_file    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT
);

CREATE INDEX volumes_project_created ON volumes (project_id, created_at);

-- No foreign key to volumes: a backup outlives the volume it was taken from.
CREATE TABLE backups (
    id                    TEXT   NOT NULL PRIMARY KEY,
    project_id            TEXT   NOT NULL,
    user_id               TEXT   NOT NULL,
    volume_id             TEXT   NOT NULL,
    snapshot_id           TEXT,
    status                TEXT   NOT NULL,
    display_name          TEXT,
    display_description   TEXT,
    size                  BIGINT NOT NULL,
    size_bytes            BIGINT NOT NULL,
    object_count          BIGINT NOT NULL DEFAULT 0,
    container             TEXT,
    service               TEXT,
    service_metadata      TEXT,
    parent_id             TEXT,
    num_dependent_backups BIGINT NOT NULL DEFAULT 0,
    availability_zone     TEXT,
    host                  TEXT,
    fail_reason           TEXT,
    restore_volume_id     TEXT,
    data_timestamp        BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT,
    deleted_at            BIGINT,
    deleted               BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX backups_volume_id ON backups (volume_id);
CREATE INDEX backups_project_created ON backups (project_id, created_at);
CREATE INDEX backups_parent_id ON backups (parent_id);

-- Cinder's per-backup key/value metadata; not used yet.
CREATE TABLE backup_metadata (
    backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT,
    PRIMARY KEY (backup_id, key)
);
