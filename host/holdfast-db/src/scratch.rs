//! Throwaway PostgreSQL databases: each test run gets a fresh, uniquely named database on
//! a shared server, so concurrent runs (and leftovers of crashed ones) never collide.

use sqlx::{AnyConnection, AssertSqlSafe, Connection};

use crate::{DbError, DbKind, redact};

/// Every scratch database's name starts with this; nothing else is ever dropped.
pub const SCRATCH_PREFIX: &str = "holdfast_test_";

/// Create `holdfast_test_<uuid>` on the server `base_url` points at (any database the
/// user may connect to) and return a URL for it.
pub async fn create_scratch_postgres(base_url: &str) -> Result<String, DbError> {
    let name = format!("{SCRATCH_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let url = with_database(base_url, &name)?;
    let mut conn = admin_connection(base_url).await?;
    let created = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await;
    conn.close().await?;
    created?;
    Ok(url)
}

/// Drop a database made by [`create_scratch_postgres`], disconnecting its sessions.
/// Refuses any database not named like a scratch one.
pub async fn drop_scratch_postgres(base_url: &str, url: &str) -> Result<(), DbError> {
    let name = database_name(url).filter(|n| is_scratch_name(n));
    let name = name.ok_or_else(|| DbError::NotScratch(redact(url)))?;
    let mut conn = admin_connection(base_url).await?;
    let dropped =
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await;
    conn.close().await?;
    dropped?;
    Ok(())
}

async fn admin_connection(base_url: &str) -> Result<AnyConnection, DbError> {
    if DbKind::from_url(base_url) != Some(DbKind::Postgres) {
        return Err(DbError::UnsupportedUrl(redact(base_url)));
    }
    sqlx::any::install_default_drivers();
    Ok(AnyConnection::connect(base_url).await?)
}

/// Our prefix plus lowercase alphanumerics only: safe to splice into DDL unquoted.
fn is_scratch_name(name: &str) -> bool {
    name.strip_prefix(SCRATCH_PREFIX)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Split `scheme://authority/db?query` into (`scheme://authority`, `db`, `?query`).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let authority_start = url.find("://")? + 3;
    let tail = &url[authority_start..];
    let path_start = authority_start + tail.find(['/', '?']).unwrap_or(tail.len());
    let query_start = url[path_start..].find('?').map_or(url.len(), |i| path_start + i);
    let db = url[path_start..query_start].trim_start_matches('/');
    Some((&url[..path_start], db, &url[query_start..]))
}

/// `url` with its database replaced by `name`, keeping user, host and parameters.
fn with_database(url: &str, name: &str) -> Result<String, DbError> {
    let (base, _, query) = split_url(url).ok_or_else(|| DbError::UnsupportedUrl(redact(url)))?;
    Ok(format!("{base}/{name}{query}"))
}

fn database_name(url: &str) -> Option<&str> {
    split_url(url).map(|(_, db, _)| db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_keeping_the_rest() {
        let name = "holdfast_test_ab12";
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", name).unwrap(),
            "postgres://postgres@127.0.0.1:5432/holdfast_test_ab12"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", name).unwrap(),
            "postgres://u:p@h/holdfast_test_ab12?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", name).unwrap(), "postgres://h/holdfast_test_ab12");
        assert_eq!(with_database("postgres://h?x=1", name).unwrap(), "postgres://h/holdfast_test_ab12?x=1");
        assert_eq!(database_name("postgres://h:1/abc?x=1"), Some("abc"));
    }

    #[test]
    fn only_scratch_names_are_droppable() {
        assert!(is_scratch_name("holdfast_test_0123abcd"));
        assert!(!is_scratch_name("holdfast_test_"));
        assert!(!is_scratch_name("test"));
        assert!(!is_scratch_name("holdfast_test_x; DROP DATABASE test"));
    }
}
