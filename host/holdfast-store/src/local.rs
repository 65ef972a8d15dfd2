//! A directory of containers, opened once; every path is resolved beneath it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, Mode, OFlags, ResolveFlags};

use crate::{MAX_LIST_NAMES, MAX_OBJECT_BYTES, StoreError};

/// No `..` out, no absolute paths, no symlink anywhere on the way (a driver of another
/// kind, or a person, may have planted one), no `/proc` magic links.
const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS).union(ResolveFlags::NO_MAGICLINKS);

pub struct LocalStore {
    root: OwnedFd,
    path: PathBuf,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore").field("path", &self.path).finish()
    }
}

fn errno<'a>(what: &'static str, path: &'a str) -> impl FnOnce(rustix::io::Errno) -> StoreError + 'a {
    move |e| StoreError::io(what, path, e.into())
}

impl LocalStore {
    /// Open the store at `path`, a directory.
    pub fn open(path: &Path) -> Result<LocalStore, StoreError> {
        let shown = path.display().to_string();
        let root = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| match e {
                rustix::io::Errno::NOENT => StoreError::Io {
                    what: "opening the store",
                    path: shown.clone(),
                    source: std::io::Error::other("no such directory"),
                },
                e => StoreError::io("opening the store", &shown, e.into()),
            })?;
        Ok(LocalStore { root, path: path.to_owned() })
    }

    /// [`Self::open`], then check that this process can create files in it (Cinder's
    /// check_for_setup_error) and that the kernel resolves paths beneath (Linux 5.6+).
    pub fn open_checked(path: &Path) -> Result<LocalStore, StoreError> {
        let store = Self::open(path)?;
        let shown = path.display().to_string();
        let probe = ".holdfast-store-probe";
        store.create(probe).map_err(|e| match e {
            StoreError::Io { source, .. } if source.raw_os_error() == Some(rustix::io::Errno::NOSYS.raw_os_error()) => {
                StoreError::Io {
                    what: "opening files beneath",
                    path: shown.clone(),
                    source: std::io::Error::other("this kernel has no openat2 (Linux 5.6 or later is needed)"),
                }
            }
            e => e,
        })?;
        rustix::fs::unlinkat(&store.root, probe, AtFlags::empty()).map_err(errno("removing", probe))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_beneath(&self, rel: &str, flags: OFlags, mode: Mode) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat2(&self.root, rel, flags | OFlags::CLOEXEC | OFlags::NOFOLLOW, mode, BENEATH)
    }

    fn create(&self, rel: &str) -> Result<File, StoreError> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC;
        self.open_beneath(rel, flags, Mode::from_raw_mode(0o640)).map(File::from).map_err(errno("creating", rel))
    }

    /// Make `container` and the directories above it; returns those it created,
    /// outermost first (their parents' entries need a sync).
    pub fn make_container(&self, container: &str) -> Result<Vec<String>, StoreError> {
        let mut made = Vec::new();
        let mut parent: Option<String> = None;
        for part in container.split('/') {
            let rel = match &parent {
                Some(p) => format!("{p}/{part}"),
                None => part.to_owned(),
            };
            let created = match &parent {
                None => rustix::fs::mkdirat(&self.root, part, Mode::from_raw_mode(0o750)),
                Some(p) => {
                    let dir = self
                        .open_beneath(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                        .map_err(errno("opening", p))?;
                    rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o750))
                }
            };
            match created {
                Ok(()) => made.push(rel.clone()),
                Err(rustix::io::Errno::EXIST) => {
                    // Present: it must be a real directory, not a planted symlink.
                    self.open_beneath(&rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                        .map_err(errno("opening", &rel))?;
                }
                Err(e) => return Err(StoreError::io("creating", &rel, e.into())),
            }
            parent = Some(rel);
        }
        Ok(made)
    }

    /// Create or replace `container/name` with `data`, not yet durable: sync it (and
    /// the container) before anything depends on it.
    pub fn write(&self, container: &str, name: &str, data: &[u8]) -> Result<(), StoreError> {
        let rel = format!("{container}/{name}");
        let mut f = self.create(&rel)?;
        f.write_all(data).map_err(|e| StoreError::io("writing", &rel, e))?;
        start_write_back(&f);
        Ok(())
    }

    /// Add `data` to the end of `container/name`, creating it when missing; not yet
    /// durable, as [`Self::write`]. No size limit: a volume of 1 TiB in 32 KiB sha
    /// blocks has a sha256file of 2.4 GB, read back by range (a `put` has none either).
    pub fn append(&self, container: &str, name: &str, data: &[u8]) -> Result<(), StoreError> {
        let rel = format!("{container}/{name}");
        // NONBLOCK: opening a planted fifo must not hang (no effect on regular files).
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::NONBLOCK;
        let fd = self.open_beneath(&rel, flags, Mode::from_raw_mode(0o640)).map_err(errno("creating", &rel))?;
        regular_len(&fd, &rel)?;
        let mut f = File::from(fd);
        f.write_all(data).map_err(|e| StoreError::io("writing", &rel, e))?;
        start_write_back(&f);
        Ok(())
    }

    /// `container/name` opened for reading, with its path and length; a regular file
    /// only (NONBLOCK: a planted fifo is refused, not waited on).
    fn open_regular(&self, container: &str, name: &str) -> Result<(String, File, u64), StoreError> {
        let rel = format!("{container}/{name}");
        let fd = self
            .open_beneath(&rel, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())
            .map_err(errno("opening", &rel))?;
        let len = regular_len(&fd, &rel)?;
        Ok((rel, File::from(fd), len))
    }

    /// Up to `length` bytes of `container/name` from `offset`: fewer only at its end.
    pub fn read_range(&self, container: &str, name: &str, offset: u64, length: usize) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.read_range_into(container, name, offset, length, &mut out)?;
        Ok(out)
    }

    /// [`Self::read_range`] into `out`, which is cleared first; its capacity is kept, so
    /// a caller that hands the same buffer back does not allocate (or fault in fresh
    /// pages) per object.
    pub fn read_range_into(
        &self,
        container: &str,
        name: &str,
        offset: u64,
        length: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        use std::io::{Seek, SeekFrom};
        let (rel, mut f, len) = self.open_regular(container, name)?;
        out.clear();
        if offset >= len {
            return Ok(());
        }
        let want = (len - offset).min(length as u64);
        out.reserve(usize::try_from(want).unwrap_or(usize::MAX));
        f.seek(SeekFrom::Start(offset)).map_err(|e| StoreError::io("reading", &rel, e))?;
        // Fewer if it shrank since the stat; never more than the stat said.
        f.take(want).read_to_end(out).map_err(|e| StoreError::io("reading", &rel, e))?;
        Ok(())
    }

    pub fn read(&self, container: &str, name: &str) -> Result<Vec<u8>, StoreError> {
        let (rel, f, len) = self.open_regular(container, name)?;
        if len > MAX_OBJECT_BYTES {
            return Err(StoreError::TooLarge { path: rel, len });
        }
        let mut out = Vec::with_capacity(len as usize);
        f.take(MAX_OBJECT_BYTES + 1).read_to_end(&mut out).map_err(|e| StoreError::io("reading", &rel, e))?;
        if out.len() as u64 > MAX_OBJECT_BYTES {
            return Err(StoreError::TooLarge { path: rel, len: out.len() as u64 });
        }
        Ok(out)
    }

    /// Names in `container` that start with `prefix`, sorted; none when the container
    /// does not exist.
    pub fn list(&self, container: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let fd = match self.open_beneath(container, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("listing", container, e.into())),
        };
        let mut names = Vec::new();
        for entry in Dir::read_from(&fd).map_err(errno("listing", container))? {
            let entry = entry.map_err(errno("listing", container))?;
            let Ok(name) = entry.file_name().to_str() else { continue };
            if name.starts_with(prefix) && name != "." && name != ".." {
                if names.len() == MAX_LIST_NAMES {
                    return Err(StoreError::TooMany { path: container.to_owned() });
                }
                names.push(name.to_owned());
            }
        }
        names.sort_unstable();
        Ok(names)
    }

    /// Remove `container/name`; an absent object is not an error. Never follows a
    /// symlink: a planted one is removed itself.
    pub fn remove(&self, container: &str, name: &str) -> Result<(), StoreError> {
        let dir = match self.open_beneath(container, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(StoreError::io("opening", container, e.into())),
        };
        match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(StoreError::io("removing", &format!("{container}/{name}"), e.into())),
        }
    }

    /// Make a file's data, or a directory's entries, durable. `""` is the root.
    pub fn sync(&self, rel: &str) -> Result<(), StoreError> {
        let fd = if rel.is_empty() {
            self.root.as_fd().try_clone_to_owned().map_err(|e| StoreError::io("opening", ".", e))?
        } else {
            self.open_beneath(rel, OFlags::RDONLY, Mode::empty()).map_err(errno("opening", rel))?
        };
        rustix::fs::fsync(&fd).map_err(errno("syncing", rel))
    }

    /// Remove `container` and the directories above it while they are empty (Cinder
    /// leaves them behind; a deleted backup should not).
    pub fn prune(&self, container: &str) {
        let mut dir = container;
        loop {
            let (parent, last) = match dir.rsplit_once('/') {
                Some((p, l)) => (Some(p), l),
                None => (None, dir),
            };
            let removed = match parent {
                None => rustix::fs::unlinkat(&self.root, last, AtFlags::REMOVEDIR),
                Some(p) => match self.open_beneath(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
                    Ok(fd) => rustix::fs::unlinkat(&fd, last, AtFlags::REMOVEDIR),
                    Err(e) => Err(e),
                },
            };
            match (removed, parent) {
                (Ok(()), Some(p)) => dir = p,
                _ => return,
            }
        }
    }
}

/// The length of the object open at `fd`, which must be a regular file (a driver of
/// another kind, or a person, may have left a fifo or a device there).
fn regular_len(fd: &OwnedFd, rel: &str) -> Result<u64, StoreError> {
    let st = rustix::fs::fstat(fd).map_err(errno("stat of", rel))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(StoreError::Denied(format!("{rel} is not a regular file")));
    }
    Ok(st.st_size as u64)
}

/// Start writing `f`'s data to the disk without waiting for it. The flush that makes
/// it durable then waits for little more than a journal commit; without this its
/// fsyncs waited for the whole batch's write-back, and the backup's pipeline stood
/// still behind the driver meanwhile. Only a hint: a failure shows at that flush.
fn start_write_back(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid fd; the call only starts write-back of its dirty pages.
    unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open_checked(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn objects_round_trip_in_nested_containers() {
        let (dir, s) = store();
        assert_eq!(s.make_container("ab/cd/abcd").unwrap(), ["ab", "ab/cd", "ab/cd/abcd"]);
        assert!(s.make_container("ab/cd/abcd").unwrap().is_empty());
        s.write("ab/cd/abcd", "p_1", b"one").unwrap();
        s.write("ab/cd/abcd", "p_2", b"two").unwrap();
        s.write("ab/cd/abcd", "q_1", b"other").unwrap();
        assert_eq!(std::fs::read(dir.path().join("ab/cd/abcd/p_1")).unwrap(), b"one");
        assert_eq!(s.read("ab/cd/abcd", "p_2").unwrap(), b"two");
        assert_eq!(s.list("ab/cd/abcd", "p_").unwrap(), ["p_1", "p_2"]);
        assert!(s.list("nope", "p").unwrap().is_empty());
        s.sync("ab/cd/abcd/p_1").unwrap();
        s.sync("ab/cd/abcd").unwrap();
        s.sync("").unwrap();
        for n in ["p_1", "p_2", "q_1", "absent"] {
            s.remove("ab/cd/abcd", n).unwrap();
        }
        assert!(matches!(s.read("ab/cd/abcd", "p_1"), Err(StoreError::NotFound(_))));
        s.prune("ab/cd/abcd");
        assert!(!dir.path().join("ab").exists(), "empty containers go");
    }

    #[test]
    fn objects_grow_by_appends_and_are_read_in_ranges() {
        let (dir, s) = store();
        s.make_container("c").unwrap();
        s.write("c", "f", b"stale and long").unwrap();
        s.write("c", "f", b"head,").unwrap();
        s.append("c", "f", b"one,").unwrap();
        s.append("c", "f", b"two").unwrap();
        s.append("c", "new", b"made").unwrap();
        assert_eq!(std::fs::read(dir.path().join("c/f")).unwrap(), b"head,one,two");
        assert_eq!(s.read("c", "new").unwrap(), b"made");
        assert_eq!(s.read_range("c", "f", 0, 4).unwrap(), b"head");
        assert_eq!(s.read_range("c", "f", 5, 100).unwrap(), b"one,two", "fewer at the end");
        assert!(s.read_range("c", "f", 12, 10).unwrap().is_empty());
        assert!(s.read_range("c", "f", u64::MAX, 10).unwrap().is_empty());
        assert!(matches!(s.read_range("c", "absent", 0, 1), Err(StoreError::NotFound(_))));
        // Past the largest object a whole read returns, appends and ranges go on (sparse).
        let big = std::fs::OpenOptions::new().write(true).open(dir.path().join("c/f")).unwrap();
        big.set_len(MAX_OBJECT_BYTES).unwrap();
        s.append("c", "f", b"end").unwrap();
        assert_eq!(s.read_range("c", "f", MAX_OBJECT_BYTES, 10).unwrap(), b"end");
        assert!(matches!(s.read("c", "f"), Err(StoreError::TooLarge { .. })));
        // A fifo is refused, not waited on.
        rustix::fs::mknodat(&s.root, "c/fifo", rustix::fs::FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert!(matches!(s.read_range("c", "fifo", 0, 1), Err(StoreError::Denied(_))));
        assert!(matches!(s.append("c", "fifo", b"x"), Err(StoreError::Denied(_)) | Err(StoreError::Io { .. })));
    }

    #[test]
    fn planted_symlinks_lead_nowhere() {
        let (dir, s) = store();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::fs::create_dir(dir.path().join("c")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("c/obj")).unwrap();
        std::os::unix::fs::symlink("../c", dir.path().join("c/rel")).unwrap();
        assert!(s.read("link", "secret").is_err(), "a symlinked container");
        assert!(s.read("c", "obj").is_err(), "a symlinked object");
        assert!(s.write("c", "obj", b"overwrite").is_err(), "writing through a symlink");
        assert!(s.make_container("link/x").is_err());
        assert!(s.make_container("c/rel").is_err());
        assert!(s.list("link", "").is_err());
        assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"secret");
        // Removing a planted link removes the link, never its target.
        s.remove("c", "obj").unwrap();
        assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"secret");
    }
}
