//! [`VolumeLocation`]: where a volume's or snapshot's data lives, typed, so each
//! volume backend takes only what it can open: files and block devices on this host,
//! and RBD images (or snapshots of them) in a Ceph pool.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VolumeLocation {
    /// A raw file or block device on this host (absolute path).
    File(PathBuf),
    /// An RBD image, or one of its snapshots: stored as `rbd:POOL/IMAGE[@SNAP]`.
    Rbd(RbdSpec),
}

/// `POOL/IMAGE[@SNAP]`: Ceph's own way of naming an image or a snapshot of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RbdSpec {
    pub pool: String,
    pub image: String,
    pub snap: Option<String>,
}

impl RbdSpec {
    /// Parse `POOL/IMAGE[@SNAP]`; names are non-empty, without `/`, `@` or control
    /// characters, at most 255 bytes.
    pub fn parse(text: &str) -> Option<RbdSpec> {
        let (pool, rest) = text.split_once('/')?;
        let (image, snap) = match rest.split_once('@') {
            Some((i, s)) => (i, Some(s)),
            None => (rest, None),
        };
        let ok =
            |n: &str| !n.is_empty() && n.len() <= 255 && !n.contains(['/', '@']) && !n.chars().any(char::is_control);
        (ok(pool) && ok(image) && snap.is_none_or(ok)).then(|| RbdSpec {
            pool: pool.to_owned(),
            image: image.to_owned(),
            snap: snap.map(str::to_owned),
        })
    }

    /// The same image at snapshot `snap`.
    pub fn at(&self, snap: &str) -> RbdSpec {
        RbdSpec { snap: Some(snap.to_owned()), ..self.clone() }
    }
}

impl fmt::Display for RbdSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.snap {
            Some(s) => write!(f, "{}/{}@{s}", self.pool, self.image),
            None => write!(f, "{}/{}", self.pool, self.image),
        }
    }
}

/// A stored location this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown volume location {0:?}: expected an absolute path or rbd:POOL/IMAGE[@SNAP]")]
pub struct UnknownLocation(pub String);

/// How an RBD location is written where a path could be.
pub const RBD_PREFIX: &str = "rbd:";

impl VolumeLocation {
    /// The form kept in the database: a file is its absolute path (as rows written
    /// before locations were typed already hold), an RBD image `rbd:POOL/IMAGE[@SNAP]`.
    pub fn to_stored(&self) -> String {
        match self {
            VolumeLocation::File(p) => p.to_string_lossy().into_owned(),
            VolumeLocation::Rbd(spec) => format!("{RBD_PREFIX}{spec}"),
        }
    }

    pub fn parse_stored(s: &str) -> Result<VolumeLocation, UnknownLocation> {
        if let Some(spec) = s.strip_prefix(RBD_PREFIX) {
            return RbdSpec::parse(spec).map(VolumeLocation::Rbd).ok_or_else(|| UnknownLocation(s.to_owned()));
        }
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
            VolumeLocation::Rbd(_) => None,
        }
    }

    pub fn as_rbd(&self) -> Option<&RbdSpec> {
        match self {
            VolumeLocation::Rbd(spec) => Some(spec),
            VolumeLocation::File(_) => None,
        }
    }
}

impl fmt::Display for VolumeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeLocation::File(p) => write!(f, "{}", p.display()),
            VolumeLocation::Rbd(spec) => write!(f, "{RBD_PREFIX}{spec}"),
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

    #[test]
    fn rbd_specs_round_trip_and_bad_ones_are_refused() {
        let l = VolumeLocation::parse_stored("rbd:volumes/volume-1@backup.2.snap.3.5").unwrap();
        let spec = l.as_rbd().unwrap();
        assert_eq!(
            (spec.pool.as_str(), spec.image.as_str(), spec.snap.as_deref()),
            ("volumes", "volume-1", Some("backup.2.snap.3.5"))
        );
        assert_eq!(l.to_stored(), "rbd:volumes/volume-1@backup.2.snap.3.5");
        assert_eq!(VolumeLocation::parse_stored("rbd:p/i").unwrap().to_stored(), "rbd:p/i");
        for bad in ["rbd:", "rbd:p", "rbd:/i", "rbd:p/", "rbd:p/i@", "rbd:p/a/b", "rbd:p/i@s@t"] {
            assert!(VolumeLocation::parse_stored(bad).is_err(), "{bad}");
        }
    }
}
