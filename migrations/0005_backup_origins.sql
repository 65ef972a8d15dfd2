-- Which backend and which driver build wrote each backup, so restore, delete and
-- export go to a backend whose driver can read it. Rows written before backends
-- were configurable, and imported records, have none: they belong to the default
-- backend when its driver's service matches the backup's.
CREATE TABLE backup_origins (
    backup_id      TEXT NOT NULL PRIMARY KEY,
    backend        TEXT NOT NULL,
    driver_name    TEXT NOT NULL,
    driver_version TEXT NOT NULL,
    driver_sha256  TEXT NOT NULL,
    wit_version    TEXT NOT NULL
);

CREATE INDEX backup_origins_backend ON backup_origins (backend);
