//! [`VolumeLocation`]: where a volume's or snapshot's data lives, typed, so each
//! volume backend takes only what it can open (files today; RBD images next).

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VolumeLocation {
    /// A raw file or block device on this host (absolute path).
    File(PathBuf),
}

/// A stored location this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown volume location {0:?}: expected an absolute path")]
pub struct UnknownLocation(pub String);

impl VolumeLocation {
    /// The form kept in the database: a file is its absolute path (as rows written
    /// before locations were typed already hold).
    pub fn to_stored(&self) -> String {
        match self {
            VolumeLocation::File(p) => p.to_string_lossy().into_owned(),
        }
    }

    pub fn parse_stored(s: &str) -> Result<VolumeLocation, UnknownLocation> {
        if Path::new(s).is_absolute() {
            Ok(VolumeLocation::File(PathBuf::from(s)))
        } else {
            Err(UnknownLocation(s.to_owned()))
        }
    }

    /// The file behind a file location.
    pub fn as_file(&self) -> Option<&Path> {
        match self {
            VolumeLocation::File(p) => Some(p),
        }
    }
}

impl fmt::Display for VolumeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeLocation::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_relative_paths_are_refused() {
        let l = VolumeLocation::parse_stored("/srv/v.raw").unwrap();
        assert_eq!(l, VolumeLocation::File("/srv/v.raw".into()));
        assert_eq!(l.to_stored(), "/srv/v.raw");
        assert!(VolumeLocation::parse_stored("v.raw").is_err());
        assert!(VolumeLocation::parse_stored("").is_err());
    }
}
