//! Listing backups the way Cinder's API does, in SQL: exact and substring filters,
//! multi-key sorts, marker (keyset) pagination, limit, offset and a total count.
//!
//! A marker page is `WHERE <sort keys> after <the marker's values>`: with a leading
//! bound on the first key (`k1 <= v1`) the engine can walk the index instead of
//! sorting the whole table, so a page deep in 100,000 backups costs what the first
//! one does.

use holdfast_types::Backup;
use sqlx::AssertSqlSafe;

use crate::backups::parse_backup;
use crate::{Db, DbError};

/// Columns a listing may sort on (Cinder accepts any column; these are the ones its
/// clients use). Nullable ones sort as if empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupSortKey {
    CreatedAt,
    UpdatedAt,
    Id,
    Status,
    Size,
    Name,
    VolumeId,
}

impl BackupSortKey {
    /// Cinder's names (`display_name`; `name` from microversion 3.37).
    pub fn parse(s: &str, name_allowed: bool) -> Option<Self> {
        Some(match s {
            "created_at" => Self::CreatedAt,
            "updated_at" => Self::UpdatedAt,
            "id" => Self::Id,
            "status" => Self::Status,
            "size" => Self::Size,
            "display_name" => Self::Name,
            "name" if name_allowed => Self::Name,
            "volume_id" => Self::VolumeId,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "COALESCE(updated_at, 0)",
            Self::Id => "id",
            Self::Status => "status",
            Self::Size => "size",
            Self::Name => "COALESCE(display_name, '')",
            Self::VolumeId => "volume_id",
        }
    }

    fn value(self, b: &Backup) -> Bind {
        match self {
            Self::CreatedAt => Bind::Int(b.created_at.micros()),
            Self::UpdatedAt => Bind::Int(b.updated_at.map_or(0, |t| t.micros())),
            Self::Id => Bind::Text(b.id.clone()),
            Self::Status => Bind::Text(b.status.as_str().to_owned()),
            Self::Size => Bind::Int(b.size),
            Self::Name => Bind::Text(b.display_name.clone().unwrap_or_default()),
            Self::VolumeId => Bind::Text(b.volume_id.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

/// One listing request. `marker` is the row the previous page ended on (the caller
/// resolved and authorised it).
#[derive(Debug, Clone)]
pub struct BackupQuery {
    pub project_id: Option<String>,
    pub name: Option<String>,
    /// `name~=` (microversion ≥ 3.34): substring match.
    pub name_like: Option<String>,
    pub status: Option<String>,
    pub volume_id: Option<String>,
    pub sort: Vec<(BackupSortKey, SortDir)>,
    pub marker: Option<Backup>,
    pub offset: i64,
    pub limit: i64,
}

impl Default for BackupQuery {
    fn default() -> Self {
        BackupQuery {
            project_id: None,
            name: None,
            name_like: None,
            status: None,
            volume_id: None,
            sort: Vec::new(),
            marker: None,
            offset: 0,
            limit: 1000,
        }
    }
}

#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    Int(i64),
}

struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }
}

impl BackupQuery {
    /// The sort with Cinder's tie-breakers (`created_at`, `id`) appended in the first
    /// key's direction: every order is total, so keyset pages never skip or repeat.
    fn full_sort(&self) -> Vec<(BackupSortKey, SortDir)> {
        let mut keys =
            if self.sort.is_empty() { vec![(BackupSortKey::CreatedAt, SortDir::Desc)] } else { self.sort.clone() };
        let dir = keys[0].1;
        for k in [BackupSortKey::CreatedAt, BackupSortKey::Id] {
            if !keys.iter().any(|(have, _)| *have == k) {
                keys.push((k, dir));
            }
        }
        keys
    }

    /// `WHERE …` for the filters (not the marker).
    fn filters(&self, sql: &mut Sql) {
        sql.text.push_str(" WHERE deleted = 0");
        let exact = [
            ("project_id", &self.project_id),
            ("display_name", &self.name),
            ("status", &self.status),
            ("volume_id", &self.volume_id),
        ];
        for (col, v) in exact {
            if let Some(v) = v {
                let p = sql.bind(Bind::Text(v.clone()));
                sql.text.push_str(&format!(" AND {col} = {p}"));
            }
        }
        if let Some(like) = &self.name_like {
            // Case-insensitive on both engines (SQLite's LIKE is, PostgreSQL's is not);
            // `!` escapes the wildcards (a backslash depends on PostgreSQL settings).
            let escaped = like.to_lowercase().replace('!', "!!").replace('%', "!%").replace('_', "!_");
            let p = sql.bind(Bind::Text(format!("%{escaped}%")));
            sql.text.push_str(&format!(" AND LOWER(display_name) LIKE {p} ESCAPE '!'"));
        }
    }

    fn keyset(&self, sql: &mut Sql, keys: &[(BackupSortKey, SortDir)]) {
        let Some(m) = &self.marker else { return };
        let cmp = |d: SortDir, strict: bool| match (d, strict) {
            (SortDir::Desc, true) => "<",
            (SortDir::Desc, false) => "<=",
            (SortDir::Asc, true) => ">",
            (SortDir::Asc, false) => ">=",
        };
        let (k0, d0) = keys[0];
        let lead = sql.bind(k0.value(m));
        sql.text.push_str(&format!(" AND {} {} {lead} AND (", k0.column(), cmp(d0, false)));
        for i in 0..keys.len() {
            if i > 0 {
                sql.text.push_str(" OR ");
            }
            sql.text.push('(');
            for (k, _) in &keys[..i] {
                let p = sql.bind(k.value(m));
                sql.text.push_str(&format!("{} = {p} AND ", k.column()));
            }
            let (k, d) = keys[i];
            let p = sql.bind(k.value(m));
            sql.text.push_str(&format!("{} {} {p})", k.column(), cmp(d, true)));
        }
        sql.text.push(')');
    }
}

impl Db {
    /// One page of live backups, in SQL.
    pub async fn query_backups(&self, q: &BackupQuery) -> Result<Vec<Backup>, DbError> {
        let keys = q.full_sort();
        let mut sql = Sql { text: format!("SELECT {} FROM backups", crate::backup_columns!()), binds: Vec::new() };
        q.filters(&mut sql);
        q.keyset(&mut sql, &keys);
        let order: Vec<String> = keys
            .iter()
            .map(|(k, d)| format!("{} {}", k.column(), if *d == SortDir::Desc { "DESC" } else { "ASC" }))
            .collect();
        let limit = sql.bind(Bind::Int(q.limit.max(0)));
        let offset = sql.bind(Bind::Int(q.offset.max(0)));
        sql.text.push_str(&format!(" ORDER BY {} LIMIT {limit} OFFSET {offset}", order.join(", ")));
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql.text)), sql.binds).fetch_all(&self.pool).await?;
        rows.iter().map(parse_backup).collect()
    }

    /// How many live backups match the filters (Cinder's `with_count`).
    pub async fn count_backups(&self, q: &BackupQuery) -> Result<i64, DbError> {
        let mut sql = Sql { text: "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM backups".into(), binds: Vec::new() };
        q.filters(&mut sql);
        let row = bind_all(sqlx::query(AssertSqlSafe(sql.text)), sql.binds).fetch_one(&self.pool).await?;
        Ok(sqlx::Row::try_get(&row, "n")?)
    }
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    q
}
