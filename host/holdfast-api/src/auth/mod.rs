//! Who is calling: a request's `X-Auth-Token` → an [`Identity`] (user, project, roles).
//!
//! Three modes, chosen by the operator (`holdfast serve --auth`):
//! - [`Auth::Tokens`] (default): tokens from the host's own files ([`tokens`]).
//! - [`Auth::Keystone`]: each token validated by Keystone ([`keystone`]).
//! - [`Auth::Noauth`]: Cinder's noauth development mode, token `user:project`, every
//!   caller an admin.
//!
//! What an identity may do is [`crate::policy`]'s business.

pub mod keystone;
pub mod tokens;

use hyper::{HeaderMap, StatusCode};

use crate::error::ApiError;

/// Roles as Cinder's default policies use them. Keystone's default implications
/// hold: admin ⇒ member ⇒ reader (its `manager` role ⇒ member too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    pub admin: bool,
    pub member: bool,
    pub reader: bool,
}

impl Roles {
    pub const ADMIN: Roles = Roles { admin: true, member: true, reader: true };

    /// From role names, with the implied roles added. Unknown names are ignored.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Roles {
        let mut r = Roles::default();
        for n in names {
            match n.trim().to_ascii_lowercase().as_str() {
                "admin" => r = Roles::ADMIN,
                "member" | "manager" | "_member_" => {
                    r.member = true;
                    r.reader = true;
                }
                "reader" => r.reader = true,
                _ => {}
            }
        }
        r
    }

    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.admin {
            v.push("admin");
        }
        if self.member {
            v.push("member");
        }
        if self.reader {
            v.push("reader");
        }
        v
    }
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub project_id: String,
    pub roles: Roles,
}

/// How tokens are checked.
pub enum Auth {
    Noauth,
    Tokens(tokens::TokenStore),
    Keystone(keystone::Keystone),
}

impl Auth {
    pub fn mode(&self) -> &'static str {
        match self {
            Auth::Noauth => "noauth",
            Auth::Tokens(_) => "token",
            Auth::Keystone(_) => "keystone",
        }
    }

    /// The caller, or 401 (no or bad token) / 503 (Keystone cannot answer).
    /// `url_project` is the project id in the request URL (noauth takes it from there).
    pub async fn identify(&self, headers: &HeaderMap, url_project: Option<&str>) -> Result<Identity, ApiError> {
        let token = token(headers);
        match self {
            Auth::Noauth => Ok(noauth(token, headers, url_project)),
            Auth::Tokens(store) => store.lookup(token.ok_or_else(unauthorized)?).ok_or_else(unauthorized),
            Auth::Keystone(k) => k.validate(token.ok_or_else(unauthorized)?).await,
        }
    }
}

/// The request's `X-Auth-Token`, if it has one.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-auth-token").and_then(|h| h.to_str().ok()).map(str::trim).filter(|t| !t.is_empty())
}

pub fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "The request you have made requires authentication.")
}

/// Cinder's noauth: token `user:project` (cinderclient's noauth plugin and OSC's
/// admin_token send it); every caller is an admin, as in Cinder.
fn noauth(token: Option<&str>, headers: &HeaderMap, url_project: Option<&str>) -> Identity {
    let (user, project) = match token.and_then(|t| t.split_once(':')) {
        Some((u, p)) if !u.is_empty() && crate::router::is_project_id(p) => (Some(u), Some(p)),
        _ => (None, None),
    };
    let header_user = headers.get("x-user-id").and_then(|h| h.to_str().ok());
    Identity {
        user_id: header_user.or(user).unwrap_or(crate::DEFAULT_USER).to_owned(),
        project_id: url_project.or(project).unwrap_or(crate::DEFAULT_PROJECT).to_owned(),
        roles: Roles::ADMIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_roles() {
        assert_eq!(Roles::from_names(["admin"]), Roles::ADMIN);
        assert_eq!(Roles::from_names(["Member"]), Roles { admin: false, member: true, reader: true });
        assert_eq!(Roles::from_names(["reader", "other"]), Roles { admin: false, member: false, reader: true });
        assert_eq!(Roles::from_names(["other"]), Roles::default());
    }

    #[tokio::test]
    async fn noauth_takes_user_and_project_from_the_token() {
        let mut h = HeaderMap::new();
        h.insert("x-auth-token", "demo:abc123".parse().unwrap());
        let id = Auth::Noauth.identify(&h, None).await.unwrap();
        assert_eq!((id.user_id.as_str(), id.project_id.as_str(), id.roles), ("demo", "abc123", Roles::ADMIN));
        let id = Auth::Noauth.identify(&h, Some("def")).await.unwrap();
        assert_eq!(id.project_id, "def");
    }
}
