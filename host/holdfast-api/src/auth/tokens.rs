//! `--auth token`: the host's own tokens.
//!
//! - `<data-dir>/admin-token`: written (mode 0600) on first start; an admin of
//!   [`crate::DEFAULT_PROJECT`]. The CLI reads it when no `--token` is given.
//! - `--token-file FILE` (optional): one token a line, `TOKEN USER PROJECT ROLES`
//!   with ROLES a comma list of `admin`, `member`, `reader`; `#` starts a comment.
//!   Edits take effect without a restart (the file is re-read when it changes).
//!
//! Tokens are kept by their SHA-256, never in the clear.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::{Identity, Roles};

/// How often the token file's modification time is looked at.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} line {line}: {why}")]
    Syntax { path: PathBuf, line: usize, why: String },
}

type Digest32 = [u8; 32];

fn digest(token: &str) -> Digest32 {
    Sha256::digest(token.as_bytes()).into()
}

pub struct TokenStore {
    admin: (Digest32, Identity),
    file: Option<PathBuf>,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    tokens: HashMap<Digest32, Identity>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

impl TokenStore {
    /// Load (or on first start create) `<data_dir>/admin-token`, and the token file
    /// if one is given. Returns the store and whether the admin token was created.
    pub fn open(data_dir: &Path, file: Option<PathBuf>) -> Result<(TokenStore, bool), TokenFileError> {
        let path = data_dir.join("admin-token");
        let io = |source| TokenFileError::Io { path: path.clone(), source };
        let (token, created) = match std::fs::read_to_string(&path) {
            Ok(t) => (t.trim().to_owned(), false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                let mut f =
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
                writeln!(f, "{token}").and_then(|_| f.sync_all()).map_err(io)?;
                (token, true)
            }
            Err(e) => return Err(io(e)),
        };
        if token.is_empty() {
            return Err(TokenFileError::Syntax { path, line: 1, why: "the admin token is empty".into() });
        }
        let admin =
            Identity { user_id: "admin".into(), project_id: crate::DEFAULT_PROJECT.into(), roles: Roles::ADMIN };
        let store = TokenStore { admin: (digest(&token), admin), file, state: Mutex::default() };
        if let Some(f) = &store.file {
            let tokens = parse_file(f)?;
            let mut st = store.state.lock().unwrap_or_else(|e| e.into_inner());
            st.tokens = tokens;
            st.modified = modified(f);
            st.checked = Some(Instant::now());
        }
        Ok((store, created))
    }

    pub fn lookup(&self, token: &str) -> Option<Identity> {
        let d = digest(token);
        if d == self.admin.0 {
            return Some(self.admin.1.clone());
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = &self.file
            && st.checked.is_none_or(|t| t.elapsed() >= RELOAD_CHECK)
        {
            st.checked = Some(Instant::now());
            let m = modified(f);
            if m != st.modified {
                // A bad edit keeps the tokens that were valid before it.
                match parse_file(f) {
                    Ok(tokens) => {
                        tracing::info!(file = %f.display(), tokens = tokens.len(), "token file reloaded");
                        st.tokens = tokens;
                        st.modified = m;
                    }
                    Err(e) => tracing::error!(error = %e, "token file not reloaded"),
                }
            }
        }
        st.tokens.get(&d).cloned()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn parse_file(path: &Path) -> Result<HashMap<Digest32, Identity>, TokenFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        // Removing the file revokes every token in it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(TokenFileError::Io { path: path.into(), source }),
    };
    parse(&text).map_err(|(line, why)| TokenFileError::Syntax { path: path.into(), line, why })
}

fn parse(text: &str) -> Result<HashMap<Digest32, Identity>, (usize, String)> {
    let mut out = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [token, user, project, roles] = fields[..] else {
            return Err((i + 1, "expected TOKEN USER PROJECT ROLES".into()));
        };
        if !crate::router::is_project_id(project) {
            return Err((i + 1, format!("project {project:?} is not a Cinder project id (hex digits and dashes)")));
        }
        let names: Vec<&str> = roles.split(',').collect();
        let parsed = Roles::from_names(names.iter().copied());
        if let Some(bad) = names.iter().find(|n| Roles::from_names([**n]) == Roles::default()) {
            return Err((i + 1, format!("unknown role {bad:?} (admin, member or reader)")));
        }
        let id = Identity { user_id: user.into(), project_id: project.into(), roles: parsed };
        if out.insert(digest(token), id).is_some() {
            return Err((i + 1, "the token is listed twice".into()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines() {
        let t = parse("# comment\nt1 alice abc01 member\n\nt2 bob def reader,member # x\n").unwrap();
        assert_eq!(t[&digest("t1")].roles, Roles { admin: false, member: true, reader: true });
        assert_eq!(t[&digest("t2")].user_id, "bob");
        assert_eq!(parse("t1 alice abc").unwrap_err().0, 1);
        assert!(parse("t1 alice demo member").unwrap_err().1.contains("project"));
        assert!(parse("t1 alice abc root").unwrap_err().1.contains("unknown role"));
        assert!(parse("t1 a abc admin\nt1 b abc admin").unwrap_err().1.contains("twice"));
    }

    #[test]
    fn admin_token_is_created_once_private_and_reloads_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "member-token alice abc member\n").unwrap();
        let (store, created) = TokenStore::open(dir.path(), Some(file.clone())).unwrap();
        assert!(created);
        let admin_path = dir.path().join("admin-token");
        assert_eq!(std::fs::metadata(&admin_path).unwrap().permissions().mode() & 0o777, 0o600);
        let admin = std::fs::read_to_string(&admin_path).unwrap();
        assert_eq!(store.lookup(admin.trim()).unwrap().roles, Roles::ADMIN);
        assert_eq!(store.lookup("member-token").unwrap().project_id, "abc");
        assert!(store.lookup("nope").is_none());
        let (again, created) = TokenStore::open(dir.path(), Some(file.clone())).unwrap();
        assert!(!created);
        assert!(again.lookup(admin.trim()).is_some());

        // An edit is picked up (mtime changes), a broken edit keeps the old set.
        std::fs::write(&file, "new-token bob abc reader\n").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap();
        again.state.lock().unwrap().checked = None;
        assert!(again.lookup("new-token").is_some());
        assert!(again.lookup("member-token").is_none());
        // Deleting the file revokes its tokens (the admin token stays).
        std::fs::remove_file(&file).unwrap();
        again.state.lock().unwrap().checked = None;
        assert!(again.lookup("new-token").is_none());
        assert!(again.lookup(admin.trim()).is_some());
    }
}
