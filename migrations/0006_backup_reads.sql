-- How each backup found what changed in its volume, and how many bytes it read:
-- `full` (no parent), `sha-scan` (every block read and compared with the parent's
-- digests) or `rbd-diff` (only the extents RBD reported changed, after a sampled
-- check of the rest). Backups written before this table have no row.
CREATE TABLE backup_reads (
    backup_id     TEXT NOT NULL PRIMARY KEY,
    change_source TEXT NOT NULL,
    bytes_read    BIGINT NOT NULL
);
