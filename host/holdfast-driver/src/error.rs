//! What a driver call can fail with: the runtime's fault, the sandbox's, or the
//! driver's own answer.

/// A failed driver call, naming the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("driver {driver}: cannot load component: {message}")]
    Load { driver: String, message: String },
    #[error("driver {driver}: {message}")]
    Host { driver: String, message: String },
    #[error("driver {driver} trapped during {op}: {message}")]
    Trap { driver: String, op: &'static str, message: String },
    #[error("driver {driver} failed {op}: {error}")]
    Driver { driver: String, op: &'static str, error: DriverFailure },
}

impl DriverError {
    /// The operation stopped because the host asked it to.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, DriverError::Driver { error: DriverFailure::Cancelled, .. })
    }
}

/// The driver's own error, as the WIT `driver-error` says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverFailure {
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("I/O error: {0}")]
    Io(String),
    #[error("cancelled")]
    Cancelled,
    /// A volume call the driver made failed, and it passed the error on.
    #[error("volume: {0}")]
    Volume(VolumeFailure),
    #[error("{0}")]
    Other(String),
}

/// Why a volume call (read a chunk, write to the target) failed, as the WIT
/// `volume-error` says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeFailure {
    /// The driver asked for something impossible (a bad chunk size, a write past the end).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Stored bytes do not decode or do not match their MD5: the backup is damaged.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("I/O error: {0}")]
    Io(String),
}
