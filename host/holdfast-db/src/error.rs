//! Typed errors, so callers can tell a broken database from a broken row.

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The driver failed: connection, SQL, constraint, decode.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),

    /// Applying the embedded schema failed (or the database has unknown migrations).
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A row exists but does not parse (unknown status, negative byte count, ...).
    #[error("corrupt row: {0}")]
    Corrupt(String),

    /// The URL names no engine Holdfast supports (password redacted).
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),

    /// [`drop_scratch_postgres`](crate::drop_scratch_postgres) only drops databases it
    /// could have created.
    #[error("refusing to drop {0:?}: not a holdfast_test_* scratch database")]
    NotScratch(String),
}
