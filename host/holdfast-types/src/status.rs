//! Backup and volume statuses (Cinder's `BackupStatus` and volume status strings).
//!
//! | backup op | backup | volume |
//! |---|---|---|
//! | create | `creating` → `available` / `error` | `available` → `backing-up` → back to `available` |
//! | restore | `available` → `restoring` → `available` | `available` → `restoring-backup` → `available` / `error_restoring` |
//! | delete | `available`/`error` → `deleting` → `deleted` (row hidden) / `error` | – |

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(UnknownStatus(s.to_owned())) }
            }
        }
    };
}

status_enum!(
    /// Status of a backup row.
    BackupStatus {
        Creating => "creating",
        Available => "available",
        Deleting => "deleting",
        Deleted => "deleted",
        Error => "error",
        ErrorDeleting => "error_deleting",
        Restoring => "restoring",
    }
);

status_enum!(
    /// Status of a volume row.
    VolumeStatus {
        Creating => "creating",
        Available => "available",
        InUse => "in-use",
        BackingUp => "backing-up",
        RestoringBackup => "restoring-backup",
        Deleting => "deleting",
        Error => "error",
        ErrorRestoring => "error_restoring",
        Extending => "extending",
    }
);

status_enum!(
    /// Status of a volume snapshot row (Cinder's snapshot statuses Holdfast uses).
    SnapshotStatus {
        Creating => "creating",
        Available => "available",
        BackingUp => "backing-up",
        Deleting => "deleting",
        Error => "error",
        ErrorDeleting => "error_deleting",
    }
);

impl BackupStatus {
    /// Statuses a dead process can leave behind; `init_host` looks at these.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Creating | Self::Deleting | Self::Restoring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_cinder_names() {
        for s in BackupStatus::ALL {
            assert_eq!(s.as_str().parse::<BackupStatus>().unwrap(), *s);
        }
        for s in VolumeStatus::ALL {
            assert_eq!(s.as_str().parse::<VolumeStatus>().unwrap(), *s);
        }
        for s in SnapshotStatus::ALL {
            assert_eq!(s.as_str().parse::<SnapshotStatus>().unwrap(), *s);
        }
        assert_eq!(VolumeStatus::InUse.as_str(), "in-use");
        assert!("in_use".parse::<VolumeStatus>().is_err());
    }
}
