//! Which backups' objects one driver operation may touch.
//!
//! A backup's objects are the names in its container that start with its object
//! prefix (Cinder's layout). The host refuses a location that overlaps another live
//! backup's before it binds a scope to it, so a prefix match is exactly "this
//! backup's objects".

use crate::StoreError;
use crate::name::cut;

/// Where one backup's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub container: String,
    pub prefix: String,
}

impl Location {
    pub fn new(container: impl Into<String>, prefix: impl Into<String>) -> Location {
        Location { container: container.into(), prefix: prefix.into() }
    }

    /// Where a backup row says its objects are, once it has recorded it.
    pub fn of_backup(b: &holdfast_types::Backup) -> Option<Location> {
        Some(Location::new(b.container.clone()?, b.service_metadata.clone()?))
    }

    fn holds(&self, container: &str, name: &str) -> bool {
        self.container == container && name.starts_with(&self.prefix)
    }
}

/// What one operation may do: write (create, overwrite, delete) the objects of at
/// most one backup, and read those and the objects of the backups listed as
/// readable (an incremental backup's parent, a restore's chain).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    write: Option<Location>,
    read: Vec<Location>,
}

impl Scope {
    /// Nothing at all (setup, export, import).
    pub fn none() -> Scope {
        Scope::default()
    }

    /// Read these backups' objects.
    pub fn reading(read: Vec<Location>) -> Scope {
        Scope { write: None, read }
    }

    /// Write (and read) one backup's objects.
    pub fn writing(own: Location) -> Scope {
        Scope { write: Some(own), read: Vec::new() }
    }

    /// A backup: its parent's objects to read; its own once it records where they go.
    pub fn for_backup(parent: Option<&holdfast_types::Backup>) -> Scope {
        Scope::reading(parent.and_then(Location::of_backup).into_iter().collect())
    }

    /// A restore: its chain's objects, to read.
    pub fn for_restore(chain: &[holdfast_types::Backup]) -> Scope {
        Scope::reading(chain.iter().filter_map(Location::of_backup).collect())
    }

    /// A delete: the backup's own objects.
    pub fn for_delete(backup: &holdfast_types::Backup) -> Scope {
        Location::of_backup(backup).map_or_else(Scope::none, Scope::writing)
    }

    /// Bind the writable backup, once: a backup records its location before it writes.
    pub fn bind_write(&mut self, own: Location) -> Result<(), StoreError> {
        match &self.write {
            Some(w) if *w == own => Ok(()),
            Some(w) => Err(StoreError::Denied(format!(
                "this operation already writes {}/{}*, not {}/{}*",
                w.container,
                w.prefix,
                cut(&own.container),
                cut(&own.prefix)
            ))),
            None => {
                self.write = Some(own);
                Ok(())
            }
        }
    }

    pub fn writable(&self) -> Option<&Location> {
        self.write.as_ref()
    }

    pub fn check_write(&self, container: &str, name: &str) -> Result<(), StoreError> {
        match &self.write {
            Some(w) if w.holds(container, name) => Ok(()),
            Some(w) => Err(StoreError::Denied(format!(
                "{}/{} is not this backup's object (it may write {}/{}* only)",
                cut(container),
                cut(name),
                w.container,
                w.prefix
            ))),
            None => Err(StoreError::Denied(format!(
                "{}/{}: this operation may write no object (a backup records its location first)",
                cut(container),
                cut(name)
            ))),
        }
    }

    pub fn check_read(&self, container: &str, name: &str) -> Result<(), StoreError> {
        if self.write.iter().chain(&self.read).any(|l| l.holds(container, name)) {
            Ok(())
        } else {
            Err(StoreError::Denied(format!(
                "{}/{} belongs to no backup this operation may read",
                cut(container),
                cut(name)
            )))
        }
    }

    /// A listing must stay within one readable backup: its prefix must start with that
    /// backup's prefix.
    pub fn check_list(&self, container: &str, prefix: &str) -> Result<(), StoreError> {
        if self.write.iter().chain(&self.read).any(|l| l.container == container && prefix.starts_with(&l.prefix)) {
            Ok(())
        } else {
            Err(StoreError::Denied(format!(
                "listing {}/{}* reaches beyond the backups this operation may read",
                cut(container),
                cut(prefix)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_reaches_its_backups_only() {
        let mut s = Scope::reading(vec![Location::new("c", "parent_")]);
        assert!(s.check_write("c", "own_1").is_err(), "nothing writable before the location is bound");
        s.bind_write(Location::new("c", "own_")).unwrap();
        assert!(s.check_write("c", "own_1").is_ok());
        assert!(s.check_read("c", "own_1").is_ok());
        assert!(s.check_read("c", "parent_sha256file").is_ok());
        assert!(s.check_write("c", "parent_sha256file").is_err(), "the chain is read-only");
        assert!(s.check_read("c", "other_1").is_err());
        assert!(s.check_read("d", "own_1").is_err(), "same name, other container");
        assert!(s.check_list("c", "own_").is_ok());
        assert!(s.check_list("c", "").is_err(), "listing the whole container");
        assert!(s.check_list("c", "own").is_err(), "a shorter prefix reaches neighbours");
        assert!(s.bind_write(Location::new("c", "own_")).is_ok(), "the same location again");
        assert!(s.bind_write(Location::new("c", "other_")).is_err(), "a second location");
    }
}
