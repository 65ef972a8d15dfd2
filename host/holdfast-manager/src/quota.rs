//! Per-project quotas on backups (Cinder's `backups` and `backup_gigabytes`). Every
//! backup row that is not deleted counts, failed ones included, until it is deleted.
//!
//! On one host, creates take the manager's `quota_lock` from the check to the insert, so
//! the count is exact. Hosts sharing a PostgreSQL database check once more after the
//! insert, counting the rows created before theirs: of two creates racing for the last
//! place the later one is refused (short of clock skew between the hosts).

use holdfast_types::Backup;

use crate::{Manager, ManagerError};

/// Quota limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub backups: Option<i64>,
    pub backup_gigabytes: Option<i64>,
}

impl Default for Quotas {
    /// Cinder's defaults: `quota_backups = 10`, `quota_backup_gigabytes = 1000`.
    fn default() -> Self {
        Quotas { backups: Some(10), backup_gigabytes: Some(1000) }
    }
}

/// What a project uses now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub backups: i64,
    pub backup_gigabytes: i64,
}

impl Manager {
    pub async fn usage(&self, project_id: &str) -> Result<Usage, ManagerError> {
        let (backups, backup_gigabytes) = self.db.backup_usage(project_id, None).await?;
        Ok(Usage { backups, backup_gigabytes })
    }

    /// Refuse (413) a new backup of `size_gib` that would go over a quota.
    pub(crate) async fn check_quota(&self, project_id: &str, size_gib: i64) -> Result<(), ManagerError> {
        let used = self.usage(project_id).await?;
        self.within_quota(used, size_gib)
    }

    /// The second check, with `b`'s row inserted: usage of the rows created before it.
    pub(crate) async fn confirm_quota(&self, b: &Backup) -> Result<(), ManagerError> {
        let (backups, backup_gigabytes) = self.db.backup_usage(&b.project_id, Some((b.created_at, &b.id))).await?;
        self.within_quota(Usage { backups, backup_gigabytes }, b.size)
    }

    fn within_quota(&self, used: Usage, size_gib: i64) -> Result<(), ManagerError> {
        let q = self.config.quotas;
        if let Some(max) = q.backups
            && used.backups + 1 > max
        {
            return Err(ManagerError::OverLimit(format!(
                "BackupLimitExceeded: Maximum number of backups allowed ({max}) exceeded"
            )));
        }
        if let Some(max) = q.backup_gigabytes
            && used.backup_gigabytes + size_gib > max
        {
            return Err(ManagerError::OverLimit(format!(
                "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. \
                 Requested {size_gib}G, quota is {max}G and {}G has been consumed.",
                used.backup_gigabytes
            )));
        }
        Ok(())
    }
}
