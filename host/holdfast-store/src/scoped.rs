//! A [`LocalStore`] as one driver operation sees it: every call checked against the
//! operation's [`Scope`], writes synced in batches on [`ScopedStore::flush`].

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::name::{check_container, check_name};
use crate::{LocalStore, Location, MAX_RANGE_BYTES, Scope, StoreError};

pub struct ScopedStore {
    store: Arc<LocalStore>,
    scope: Scope,
    /// Files written since the last flush.
    unsynced: Vec<String>,
    /// Directories whose entries changed since the last flush ("" is the root).
    dirty_dirs: BTreeSet<String>,
    /// Containers this operation made or found in place: a backup puts hundreds of
    /// objects into one, and checking each of its directories again cost a mkdir and
    /// an open apiece per object.
    present: BTreeSet<String>,
}

fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(p, _)| p)
}

impl ScopedStore {
    pub fn new(store: Arc<LocalStore>, scope: Scope) -> ScopedStore {
        ScopedStore { store, scope, unsynced: Vec::new(), dirty_dirs: BTreeSet::new(), present: BTreeSet::new() }
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// A backup recorded where its objects go: from now on it may write them.
    pub fn bind_write(&mut self, own: Location) -> Result<(), StoreError> {
        self.scope.bind_write(own)
    }

    pub fn put(&mut self, container: &str, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.check_write(container, name)?;
        self.in_container(container, |store| store.write(container, name, data))?;
        self.unsynced.push(format!("{container}/{name}"));
        self.dirty_dirs.insert(container.to_owned());
        Ok(())
    }

    /// [`Self::put`]'s scope, adding `data` to the end of the object.
    pub fn append(&mut self, container: &str, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.check_write(container, name)?;
        self.in_container(container, |store| store.append(container, name, data))?;
        let rel = format!("{container}/{name}");
        // A file appended piece by piece is synced once per flush (a flush's list is
        // the objects of 64 MiB of volume: short).
        if !self.unsynced.contains(&rel) {
            self.unsynced.push(rel);
        }
        self.dirty_dirs.insert(container.to_owned());
        Ok(())
    }

    pub fn get(&self, container: &str, name: &str) -> Result<Vec<u8>, StoreError> {
        self.check_read(container, name)?;
        self.store.read(container, name)
    }

    /// An object of at most `max` bytes into `out` (cleared first), with [`Self::get`]'s
    /// scope: a longer one comes back cut at `max + 1` bytes, so the caller can refuse
    /// it without reading it all.
    pub fn get_at_most(&self, container: &str, name: &str, max: usize, out: &mut Vec<u8>) -> Result<(), StoreError> {
        self.check_read(container, name)?;
        self.store.read_range_into(container, name, 0, max.saturating_add(1), out)
    }

    /// Up to `length` bytes of an object from `offset` ([`MAX_RANGE_BYTES`] at most).
    pub fn get_range(&self, container: &str, name: &str, offset: u64, length: u32) -> Result<Vec<u8>, StoreError> {
        if length > MAX_RANGE_BYTES {
            return Err(StoreError::Denied(format!("a range of {length} bytes: at most {MAX_RANGE_BYTES} per call")));
        }
        self.check_read(container, name)?;
        self.store.read_range(container, name, offset, length as usize)
    }

    fn check_read(&self, container: &str, name: &str) -> Result<(), StoreError> {
        check_container(container)?;
        check_name(name)?;
        self.scope.check_read(container, name)
    }

    pub fn list(&self, container: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        check_container(container)?;
        self.scope.check_list(container, prefix)?;
        self.store.list(container, prefix)
    }

    pub fn delete(&mut self, container: &str, name: &str) -> Result<(), StoreError> {
        self.check_write(container, name)?;
        self.store.remove(container, name)?;
        self.unsynced.retain(|f| f != &format!("{container}/{name}"));
        self.dirty_dirs.insert(container.to_owned());
        Ok(())
    }

    /// Make everything written or removed so far durable: the files, then the
    /// directories whose entries changed, innermost first.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let files = std::mem::take(&mut self.unsynced);
        sync_files(&self.store, &files)?;
        let dirs = std::mem::take(&mut self.dirty_dirs);
        for dir in dirs.iter().rev() {
            sync_if_present(&self.store, dir)?;
        }
        let ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::debug!(files = files.len(), dirs = dirs.len(), ms, "store flushed");
        Ok(())
    }

    /// `write` into `container`, made first if need be. A container this operation made
    /// may be gone since (a neighbour's delete pruned a shared, user-named one before
    /// anything of ours was in it): then it is made again and the write tried once more.
    fn in_container(
        &mut self,
        container: &str,
        write: impl Fn(&LocalStore) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let known = self.present.contains(container);
        self.make_container(container)?;
        match write(&self.store) {
            Err(StoreError::NotFound(_)) if known => {
                self.present.remove(container);
                self.make_container(container)?;
                write(&self.store)
            }
            r => r,
        }
    }

    /// `container` and the directories above it, made once per operation.
    fn make_container(&mut self, container: &str) -> Result<(), StoreError> {
        if self.present.contains(container) {
            return Ok(());
        }
        for made in self.store.make_container(container)? {
            self.dirty_dirs.insert(parent_of(&made).to_owned());
            self.dirty_dirs.insert(made);
        }
        self.present.insert(container.to_owned());
        Ok(())
    }

    /// After a delete: the writable backup's container goes if it is now empty.
    pub fn prune(&mut self) {
        if let Some(own) = self.scope.writable() {
            self.store.prune(&own.container);
        }
        self.present.clear();
    }

    fn check_write(&self, container: &str, name: &str) -> Result<(), StoreError> {
        check_container(container)?;
        check_name(name)?;
        self.scope.check_write(container, name)
    }
}

/// fsync `rel` unless it was removed again since it was written (a failed backup
/// cleaning up): nothing to keep then.
fn sync_if_present(store: &LocalStore, rel: &str) -> Result<(), StoreError> {
    match store.sync(rel) {
        Err(StoreError::NotFound(_)) => Ok(()),
        r => r,
    }
}

/// Threads syncing files at once in [`ScopedStore::flush`].
const SYNCERS: usize = 8;

/// fsync `files`, several at a time: ext4's journal commits syncs that arrive together
/// in one transaction, where one after another each waited for a commit of its own
/// (an incremental writing each small change as an object flushes hundreds of files).
fn sync_files(store: &LocalStore, files: &[String]) -> Result<(), StoreError> {
    let sync = |part: &[String]| part.iter().try_for_each(|rel| sync_if_present(store, rel));
    if files.len() < 2 {
        return sync(files);
    }
    std::thread::scope(|s| {
        let mut results = Vec::new();
        let mut threads = Vec::new();
        for part in files.chunks(files.len().div_ceil(SYNCERS)) {
            // A thread that cannot be had (a process limit) syncs its part here instead.
            match std::thread::Builder::new().name("hf-sync".into()).spawn_scoped(s, move || sync(part)) {
                Ok(t) => threads.push(t),
                Err(_) => results.push(sync(part)),
            }
        }
        // Every thread is joined before the first error is returned.
        results.extend(threads.into_iter().map(|h| h.join().expect("a sync thread panicked")));
        results.into_iter().collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_touches_its_own_backup_and_reads_its_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open_checked(dir.path()).unwrap());
        let mut other = ScopedStore::new(store.clone(), Scope::writing(Location::new("c", "other_")));
        other.put("c", "other_1", b"theirs").unwrap();
        let mut parent = ScopedStore::new(store.clone(), Scope::writing(Location::new("c", "parent_")));
        parent.put("c", "parent_sha256file", b"digests").unwrap();
        parent.flush().unwrap();

        let mut op = ScopedStore::new(store.clone(), Scope::reading(vec![Location::new("c", "parent_")]));
        assert!(matches!(op.put("c", "own_1", b"x"), Err(StoreError::Denied(_))), "unbound");
        op.bind_write(Location::new("c", "own_")).unwrap();
        op.put("c", "own_1", b"mine").unwrap();
        op.put("d/e", "own_1", b"elsewhere").map(drop).unwrap_err();
        assert_eq!(op.get("c", "parent_sha256file").unwrap(), b"digests");
        assert_eq!(op.list("c", "own_").unwrap(), ["own_1"]);
        for denied in [
            op.get("c", "other_1").map(drop),
            op.put("c", "other_1", b"overwrite"),
            op.delete("c", "other_1"),
            op.delete("c", "parent_sha256file"),
            op.list("c", "").map(drop),
            op.get("c", "../c/other_1").map(drop),
        ] {
            assert!(matches!(denied, Err(StoreError::Denied(_))), "{denied:?}");
        }
        op.put("c", "own_sha256file", b"[").unwrap();
        op.append("c", "own_sha256file", b"1]").unwrap();
        assert_eq!(op.get_range("c", "own_sha256file", 1, 1).unwrap(), b"1");
        assert_eq!(op.get_range("c", "parent_sha256file", 3, MAX_RANGE_BYTES).unwrap(), b"ests");
        let mut out = b"left over".to_vec();
        op.get_at_most("c", "parent_sha256file", 7, &mut out).unwrap();
        assert_eq!(out, b"digests");
        op.get_at_most("c", "parent_sha256file", 3, &mut out).unwrap();
        assert_eq!(out, b"dige", "cut at max + 1");
        assert!(matches!(op.get_at_most("c", "other_1", 100, &mut out), Err(StoreError::Denied(_))));
        for denied in [
            op.append("c", "other_1", b"more"),
            op.append("c", "parent_sha256file", b"more"),
            op.append("d", "own_2", b"elsewhere"),
            op.get_range("c", "other_1", 0, 1).map(drop),
            op.get_range("c", "own_sha256file", 0, MAX_RANGE_BYTES + 1).map(drop),
        ] {
            assert!(matches!(denied, Err(StoreError::Denied(_))), "{denied:?}");
        }
        op.flush().unwrap();
        assert_eq!(store.read("c", "own_sha256file").unwrap(), b"[1]");
        assert_eq!(store.read("c", "other_1").unwrap(), b"theirs");
        assert_eq!(store.read("c", "parent_sha256file").unwrap(), b"digests");
        op.delete("c", "own_1").unwrap();
        op.prune();
        assert!(dir.path().join("c").is_dir(), "a container others still use stays");
    }

    #[test]
    fn a_container_is_made_once_per_operation_and_again_after_a_prune() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open_checked(dir.path()).unwrap());
        let mut op = ScopedStore::new(store.clone(), Scope::writing(Location::new("a/b/c", "own_")));
        op.put("a/b/c", "own_1", b"1").unwrap();
        assert!(op.present.contains("a/b/c"));
        op.put("a/b/c", "own_2", b"2").unwrap();
        op.delete("a/b/c", "own_1").unwrap();
        op.delete("a/b/c", "own_2").unwrap();
        op.prune();
        assert!(!dir.path().join("a").exists(), "the empty containers went");
        // Made again, not taken for present.
        op.put("a/b/c", "own_3", b"3").unwrap();
        // Removed behind the operation's back (a neighbour's prune): made again too.
        op.delete("a/b/c", "own_3").unwrap();
        std::fs::remove_dir_all(dir.path().join("a")).unwrap();
        op.put("a/b/c", "own_3", b"3").unwrap();
        op.append("a/b/c", "own_3", b"!").unwrap();
        std::fs::remove_dir_all(dir.path().join("a/b")).unwrap();
        op.append("a/b/c", "own_4", b"4").unwrap();
        assert_eq!(store.read("a/b/c", "own_4").unwrap(), b"4");
        op.put("a/b/c", "own_3", b"3!").unwrap();
        op.flush().unwrap();
        assert_eq!(store.read("a/b/c", "own_3").unwrap(), b"3!");
    }

    #[test]
    fn a_flush_syncs_many_objects_and_skips_ones_gone_since() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open_checked(dir.path()).unwrap());
        let mut op = ScopedStore::new(store.clone(), Scope::writing(Location::new("a/b", "own_")));
        for i in 0..37 {
            op.put("a/b", &format!("own_{i:02}"), format!("object {i}").as_bytes()).unwrap();
        }
        // Removed behind the store's back (as a cleanup racing the flush would).
        std::fs::remove_file(dir.path().join("a/b/own_05")).unwrap();
        op.flush().unwrap();
        assert_eq!(op.list("a/b", "own_").unwrap().len(), 36);
        assert_eq!(store.read("a/b", "own_36").unwrap(), b"object 36");
        // A container gone too: its files and directories are skipped alike.
        op.put("a/b", "own_40", b"x").unwrap();
        std::fs::remove_dir_all(dir.path().join("a")).unwrap();
        op.flush().unwrap();
    }
}
