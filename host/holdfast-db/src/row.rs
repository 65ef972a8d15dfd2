//! Decoding `Any` rows into Holdfast's types, with the storage conventions in one place:
//! BIGINT microseconds for timestamps, BIGINT 0/1 for booleans, TEXT for statuses.

use std::str::FromStr;

use holdfast_types::{Timestamp, VolumeLocation};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::DbError;

/// Reads one row's columns; errors name the table, row id and column.
pub(crate) struct Reader<'r> {
    row: &'r AnyRow,
    table: &'static str,
    id: String,
}

impl<'r> Reader<'r> {
    pub(crate) fn new(row: &'r AnyRow, table: &'static str) -> Result<Self, DbError> {
        let id = row.try_get("id")?;
        Ok(Reader { row, table, id })
    }

    pub(crate) fn id(&self) -> String {
        self.id.clone()
    }

    fn corrupt(&self, col: &str, why: impl std::fmt::Display) -> DbError {
        DbError::Corrupt(format!("{}.{col} of {:?}: {why}", self.table, self.id))
    }

    pub(crate) fn text(&self, col: &str) -> Result<String, DbError> {
        Ok(self.row.try_get(col)?)
    }

    pub(crate) fn opt_text(&self, col: &str) -> Result<Option<String>, DbError> {
        Ok(self.row.try_get(col)?)
    }

    pub(crate) fn int(&self, col: &str) -> Result<i64, DbError> {
        Ok(self.row.try_get(col)?)
    }

    /// Byte counts are `u64` in Rust but BIGINT in SQL; a negative one is corruption.
    pub(crate) fn bytes(&self, col: &str) -> Result<u64, DbError> {
        let v = self.int(col)?;
        u64::try_from(v).map_err(|_| self.corrupt(col, format_args!("negative byte count {v}")))
    }

    /// Booleans are stored 0/1 because sqlx's `Any` cannot decode SQLite BOOLEAN.
    pub(crate) fn flag(&self, col: &str) -> Result<bool, DbError> {
        match self.int(col)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.corrupt(col, format_args!("boolean stored as {v}"))),
        }
    }

    pub(crate) fn ts(&self, col: &str) -> Result<Timestamp, DbError> {
        Ok(Timestamp(self.int(col)?))
    }

    pub(crate) fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>, DbError> {
        Ok(self.row.try_get::<Option<i64>, _>(col)?.map(Timestamp))
    }

    /// A volume location, stored as text ([`VolumeLocation::to_stored`]).
    pub(crate) fn location(&self, col: &str) -> Result<VolumeLocation, DbError> {
        VolumeLocation::parse_stored(&self.text(col)?).map_err(|e| self.corrupt(col, e))
    }

    /// A status or another closed vocabulary stored as its text.
    pub(crate) fn status<S: FromStr>(&self, col: &str) -> Result<S, DbError>
    where
        S::Err: std::fmt::Display,
    {
        self.text(col)?.parse().map_err(|e: S::Err| self.corrupt(col, e))
    }
}

/// A byte count to bind as BIGINT; above `i64::MAX` it cannot be stored.
pub(crate) fn bigint(what: &str, v: u64) -> Result<i64, DbError> {
    i64::try_from(v).map_err(|_| DbError::Corrupt(format!("{what} {v} does not fit a BIGINT")))
}

/// Booleans as stored.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
