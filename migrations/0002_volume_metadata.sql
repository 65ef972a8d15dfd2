-- User key/value metadata of volumes (Cinder's volume_metadata): saved with each
-- backup (volume_meta) and applied to the volume a backup is restored onto.
CREATE TABLE volume_metadata (
    volume_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (volume_id, key)
);
