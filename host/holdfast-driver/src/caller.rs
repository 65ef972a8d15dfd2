//! [`Caller`]: who asked for an operation, as far as a driver's endpoint must know.
//!
//! Cinder's Swift driver with `backup_swift_auth = per_user` stores each project's
//! backups in that project's own Swift account, reached with the caller's Keystone
//! token. Holdfast keeps the token in the host: the network gate adds it to the
//! requests a backend granted it for (`grants.caller_token`), and the driver learns
//! only the project id. The token lives in memory for the one operation (and the
//! sweep of its partial objects): never stored, never logged, never in a driver.

use std::fmt;
use std::sync::Arc;

/// A Keystone token, shown as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct CallerToken(Arc<str>);

impl CallerToken {
    pub fn new(token: &str) -> CallerToken {
        CallerToken(token.into())
    }

    /// The token itself, for the one header it goes into.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallerToken(***)")
    }
}

/// The project and Keystone token of the request that started an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub project_id: String,
    pub token: CallerToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug() {
        let c = Caller { project_id: "p1".into(), token: CallerToken::new("gAAAAsecret") };
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(c.token.expose(), "gAAAAsecret");
    }
}
