//! `limit`, `offset`, `marker` and `sort` for the volume and snapshot lists, applied
//! to the (small, per-host) rows in memory with the same rules and errors as the
//! backup list, which does it in SQL (`holdfast_db::backup_query`).

use std::cmp::Ordering;

use crate::Call;
use crate::error::ApiError;

/// Cinder's `osapi_max_limit`.
pub const MAX_LIMIT: usize = 1000;

/// One list row, as the list parameters see it.
pub trait Row {
    fn id(&self) -> &str;
    /// The value to sort on for `key`, or `None` when `key` is not sortable.
    fn sort_value(&self, key: &str) -> Option<SortValue>;
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    Int(i64),
    Text(String),
}

pub fn non_negative(call: &Call<'_>, key: &str) -> Result<Option<i64>, ApiError> {
    match call.query(key) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            Ok(_) => Err(ApiError::bad_request(format!("{key} param must be positive"))),
            Err(_) => Err(ApiError::bad_request(format!("{key} param must be an integer"))),
        },
    }
}

/// Refuse (≥ 3.31) query keys that are neither list parameters nor `filters`.
pub fn check_filters(call: &Call<'_>, filters: &[&str]) -> Result<(), ApiError> {
    const PARAMS: &[&str] = &["limit", "marker", "offset", "sort", "sort_key", "sort_dir", "all_tenants", "with_count"];
    if !call.version.at_least(3, 31) {
        return Ok(());
    }
    let bad: Vec<&str> =
        call.query.iter().map(|(k, _)| k.as_str()).filter(|k| !PARAMS.contains(k) && !filters.contains(k)).collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid input received: Invalid filters {} are found in query options.",
            bad.join(",")
        )))
    }
}

/// Sort (default: newest first as the rows came), then cut after `marker`, `offset`, `limit`.
pub fn apply<R: Row>(call: &Call<'_>, mut rows: Vec<R>) -> Result<Vec<R>, ApiError> {
    let limit = non_negative(call, "limit")?.map_or(MAX_LIMIT, |n| (n as usize).min(MAX_LIMIT));
    let offset = non_negative(call, "offset")?.unwrap_or(0) as usize;
    if let Some(spec) = call.query("sort").or(call.query("sort_key")) {
        let mut keys = Vec::new();
        for part in spec.split(',') {
            let (key, dir) =
                part.trim().split_once(':').unwrap_or((part.trim(), call.query("sort_dir").unwrap_or("desc")));
            let desc = match dir.trim() {
                "desc" => true,
                "asc" => false,
                _ => {
                    return Err(ApiError::bad_request(
                        "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.",
                    ));
                }
            };
            if rows.first().is_some_and(|r| r.sort_value(key).is_none()) || !SORTABLE.contains(&key) {
                return Err(ApiError::bad_request("Invalid input received: Invalid sort key"));
            }
            keys.push((key.to_owned(), desc));
        }
        rows.sort_by(|a, b| {
            keys.iter()
                .map(|(k, desc)| {
                    let o = a.sort_value(k).cmp(&b.sort_value(k));
                    if *desc { o.reverse() } else { o }
                })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
    }
    let start = match call.query("marker") {
        None => 0,
        Some(m) => {
            rows.iter()
                .position(|r| r.id() == m)
                .ok_or_else(|| ApiError::not_found(format!("Marker {m} could not be found.")))?
                + 1
        }
    };
    Ok(rows.into_iter().skip(start + offset).take(limit).collect())
}

/// Keys the volume and snapshot lists sort on.
const SORTABLE: &[&str] = &["created_at", "updated_at", "id", "name", "display_name", "status", "size"];
