//! Holdfast's database: one sqlx `Any` pool serving SQLite (the default) and PostgreSQL
//! through a single code path, with the migrations in `/migrations` embedded and run on
//! connect.
//!
//! - [`Db`]: the pool; [`Db::connect`] takes `sqlite://PATH` or `postgres://...`.
//! - [`volumes`]: the `volumes` table ([`Volume`](holdfast_types::Volume) rows).
//! - [`backups`]: the `backups` table ([`Backup`](holdfast_types::Backup) rows).
//! - `origins`: which backend and driver build wrote each backup.
//! - [`metadata`]: user key/value metadata of volumes and backups.
//! - [`scratch`]: throwaway PostgreSQL databases so test runs never collide.
//! - [`DbError`]: what can go wrong.
//!
//! Storage conventions (portable across both engines, readable through `Any`):
//! timestamps are BIGINT microseconds, booleans BIGINT 0/1, statuses TEXT.

pub mod backup_query;
pub mod backups;
mod error;
pub mod events;
pub mod metadata;
mod origins;
mod row;
pub mod scratch;
pub mod snapshots;
pub mod volumes;

pub use backup_query::{BackupQuery, BackupSortKey, SortDir};
pub use error::DbError;
pub use events::EventFilter;
pub use metadata::Owner as MetadataOwner;
pub use scratch::{create_scratch_postgres, drop_scratch_postgres};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection};

/// The schema, compiled in so a deployed binary needs no migration files.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// How long a SQLite writer waits for another writer before "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// Which engine a [`Db`] talks to; SQL is shared, but operators and tests want to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    /// The engine a connection URL names, or `None` for an unsupported scheme.
    pub fn from_url(url: &str) -> Option<DbKind> {
        if url.starts_with("sqlite:") {
            Some(DbKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DbKind::Postgres)
        } else {
            None
        }
    }
}

/// A connection pool with the schema migrated. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
}

impl Db {
    /// Connect and migrate. `sqlite://PATH` creates the file if missing and switches it to
    /// WAL with a busy timeout, so concurrent writers in one process wait instead of failing.
    /// `sqlite::memory:` is a private throwaway database (one connection), for tests.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let kind = DbKind::from_url(url).ok_or_else(|| DbError::UnsupportedUrl(redact(url)))?;
        let pool = match kind {
            DbKind::Sqlite => sqlite_pool(&sqlite_url(url)).await?,
            DbKind::Postgres => AnyPoolOptions::new().connect(url).await?,
        };
        MIGRATOR.run(&pool).await?;
        tracing::debug!(?kind, "database connected and migrated");
        Ok(Db { pool, kind })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The underlying pool, for queries this crate does not (yet) wrap.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Close every connection; needed before a PostgreSQL database can be dropped.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A SQLite pool. Files get WAL and a busy timeout; an in-memory database lives only as
/// long as a connection to it, so it gets exactly one connection that never expires.
async fn sqlite_pool(url: &str) -> Result<AnyPool, DbError> {
    let options = AnyPoolOptions::new().after_connect(|conn, _meta| {
        Box::pin(async move {
            let pragma = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
            sqlx::query(sqlx::AssertSqlSafe(pragma)).execute(conn).await?;
            Ok(())
        })
    });
    if is_sqlite_memory(url) {
        let options = options.max_connections(1).min_connections(1);
        return Ok(options.idle_timeout(None).max_lifetime(None).connect(url).await?);
    }
    // WAL is a property of the file; switching needs an exclusive lock that the busy
    // timeout cannot wait for, so do it once on a lone connection before the pool opens.
    let mut conn = AnyConnection::connect(url).await?;
    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut conn).await?;
    conn.close().await?;
    Ok(options.connect(url).await?)
}

fn is_sqlite_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Add `mode=rwc` (create if missing) unless the caller chose a mode.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || is_sqlite_memory(url) {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// A URL fit for an error message: any password replaced.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `$first, $first+1, ...` for `n` bound values: the SQL for `IN (...)` over a slice.
impl Db {
    /// One round trip to the database (health checks).
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_urls() {
        assert_eq!(DbKind::from_url("sqlite:///tmp/x.db"), Some(DbKind::Sqlite));
        assert_eq!(DbKind::from_url("sqlite::memory:"), Some(DbKind::Sqlite));
        assert_eq!(DbKind::from_url("postgres://u@h/db"), Some(DbKind::Postgres));
        assert_eq!(DbKind::from_url("postgresql://u@h/db"), Some(DbKind::Postgres));
        assert_eq!(DbKind::from_url("mysql://u@h/db"), None);
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(sqlite_url("sqlite:///a/b.db"), "sqlite:///a/b.db?mode=rwc");
        assert_eq!(sqlite_url("sqlite:///a/b.db?cache=shared"), "sqlite:///a/b.db?cache=shared&mode=rwc");
        assert_eq!(sqlite_url("sqlite:///a/b.db?mode=ro"), "sqlite:///a/b.db?mode=ro");
        assert_eq!(sqlite_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
    }

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(placeholders(1, 0), "");
    }
}
