//! What a manager call can answer besides success. Each variant maps to one HTTP
//! status in the API (400, 404, 503, 500).

use holdfast_db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Cinder's `Invalid*` errors: the request cannot be done in the current state (400).
    #[error("{0}")]
    Invalid(String),
    /// A named object does not exist or is not visible (404).
    #[error("{0}")]
    NotFound(String),
    /// The driver cannot do this (405), e.g. force delete on a driver without it.
    #[error("{0}")]
    NotSupported(String),
    /// A quota would be exceeded (413).
    #[error("{0}")]
    OverLimit(String),
    /// The backup driver is not initialised (503).
    #[error("the backup service is down: {0}")]
    ServiceDown(String),
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Internal(String),
}

impl ManagerError {
    pub fn backup_not_found(id: &str) -> Self {
        ManagerError::NotFound(format!("Backup {id} could not be found."))
    }

    pub fn volume_not_found(id: &str) -> Self {
        ManagerError::NotFound(format!("Volume {id} could not be found."))
    }
}
