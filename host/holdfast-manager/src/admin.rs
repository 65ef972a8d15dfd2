//! Admin actions: `os-reset_status` and `os-force_delete`, which also cancel a running
//! operation (Cinder's way to stop a restore, and to abort a backup in `creating`).

use std::sync::Arc;

use holdfast_types::{BackupStatus, EventOp, EventPhase, EventType};
use serde_json::json;

use crate::progress::Operation;
use crate::{Manager, ManagerError, RequestContext};

impl Manager {
    /// Set the status to `available` or `error`. A running restore or backup of this
    /// backup is cancelled: a restore leaves its target volume `error`, a backup
    /// removes its partial objects (so a backup being created may go to `error` only).
    pub async fn reset_status(&self, ctx: &RequestContext, id: &str, status: &str) -> Result<(), ManagerError> {
        let b = self.get_backup(ctx, id).await?;
        let to = match status.to_ascii_lowercase().as_str() {
            "available" => BackupStatus::Available,
            "error" => BackupStatus::Error,
            other => {
                return Err(ManagerError::Invalid(format!(
                    "Backup status: {other} is invalid, valid statuses are: ['available', 'error']."
                )));
            }
        };
        // A backup being created loses its objects when cancelled, one being deleted is
        // losing them: neither can be `available`.
        if to == BackupStatus::Available {
            let doing = match self.progress.operation(id) {
                Some(Operation::Create) => Some("created; reset its status to error to stop it"),
                Some(Operation::Delete) => Some("deleted"),
                _ => None,
            };
            if let Some(doing) = doing {
                return Err(ManagerError::Invalid(format!("Invalid backup: it is being {doing}.")));
            }
        }
        self.notify(id, EventType::new(EventOp::ResetStatus, EventPhase::Start), json!({"new_status": to.as_str()}))
            .await;
        if !self.db.transition_backup(id, &[b.status], to).await? {
            return Err(ManagerError::Invalid("Invalid backup: its status changed meanwhile; try again".into()));
        }
        if self.progress.cancel(id) {
            tracing::info!(backup_id = %id, "reset-status cancels the running operation");
        }
        self.notify(id, EventType::new(EventOp::ResetStatus, EventPhase::End), json!({})).await;
        Ok(())
    }

    /// Delete whatever the status. A running backup or restore is cancelled first;
    /// the delete runs when it has stopped.
    pub async fn force_delete(self: &Arc<Self>, ctx: &RequestContext, id: &str) -> Result<(), ManagerError> {
        let b = self.get_backup(ctx, id).await?;
        let chosen = self.backend_for(&b).await?;
        let (driver, desc) = (chosen.driver, chosen.desc);
        if !desc.supports_force_delete {
            return Err(ManagerError::NotSupported("Operation not supported: force delete.".into()));
        }
        if self.db.count_children(id).await? > 0 {
            return Err(ManagerError::Invalid("Invalid backup: Incremental backups exist for this backup.".into()));
        }
        if !self.db.transition_backup(id, &[b.status], BackupStatus::Deleting).await? {
            return Err(ManagerError::Invalid("Invalid backup: its status changed meanwhile; try again".into()));
        }
        if self.progress.cancel(id) {
            tracing::info!(backup_id = %id, "force delete cancels the running operation");
            return Ok(()); // `after_operation` runs the delete once it stopped
        }
        let span = tracing::info_span!("delete", backup_id = %id, volume_id = %b.volume_id);
        tokio::spawn(tracing::Instrument::instrument(
            self.clone().run_delete(b, Ok(Some(driver)), ctx.caller.clone()),
            span,
        ));
        Ok(())
    }

    /// After a backup or restore stopped: run a delete that a force delete asked for,
    /// with the stopped operation's caller (a `per_user` Swift account needs a token).
    pub(crate) async fn after_operation(self: &Arc<Self>, id: &str, caller: Option<holdfast_driver::Caller>) {
        let Ok(Some(b)) = self.db.get_backup(id).await else { return };
        if b.status != BackupStatus::Deleting || b.deleted {
            return;
        }
        let driver = self.deleter(&b).await;
        Box::pin(self.clone().run_delete(b, driver, caller)).await;
    }
}
