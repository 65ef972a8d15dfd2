//! [`DriverId`]: which driver wrote a backup, precisely enough to find one that can
//! read it again.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DriverId {
    /// The driver's name (`posix`, a vendor's); backups go back to a driver of this name.
    pub name: String,
    /// The driver's own version, as it states it.
    pub version: String,
    /// SHA-256 of the component's bytes, lowercase hex.
    pub sha256: String,
    /// The WIT package version the component was built against (`0.1.0`).
    pub wit_version: String,
}

impl fmt::Display for DriverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.sha256.get(..12).unwrap_or(&self.sha256);
        write!(f, "{} {} (sha256 {short}…, wit {})", self.name, self.version, self.wit_version)
    }
}
