-- Notifications (Cinder's backup.* events): what happened to which backup, with
-- Cinder's payload as JSON text. created_at is strictly increasing per host, so
-- (created_at, id) orders events and serves as the resume cursor of the stream.
CREATE TABLE events (
    id           TEXT   NOT NULL PRIMARY KEY,
    event_type   TEXT   NOT NULL,
    priority     TEXT   NOT NULL,
    publisher_id TEXT   NOT NULL,
    project_id   TEXT   NOT NULL,
    backup_id    TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE INDEX events_project_created ON events (project_id, created_at);
CREATE INDEX events_backup_created ON events (backup_id, created_at);
CREATE INDEX events_created ON events (created_at);
