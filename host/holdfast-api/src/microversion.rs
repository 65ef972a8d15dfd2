//! `OpenStack-API-Version: volume 3.N`. Absent means 3.0; `latest` means the max.

use std::fmt;

use hyper::{HeaderMap, StatusCode};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

pub const MIN_VERSION: Version = Version(3, 0);
/// Highest microversion we claim; clients downgrade to it cleanly.
pub const MAX_VERSION: Version = Version(3, 71);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Version {
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Version(major, minor)
    }
}

pub fn negotiate(headers: &HeaderMap) -> Result<Version, ApiError> {
    let Some(raw) = headers.get("openstack-api-version") else {
        return Ok(MIN_VERSION);
    };
    let raw = raw.to_str().map_err(|_| ApiError::bad_request("Invalid OpenStack-API-Version header"))?;
    let entry = raw
        .split(',')
        .map(str::trim)
        .find_map(|e| e.strip_prefix("volume "))
        .ok_or_else(|| ApiError::bad_request("Invalid OpenStack-API-Version header: no volume version given"))?
        .trim();
    if entry == "latest" {
        return Ok(MAX_VERSION);
    }
    let parsed = entry.split_once('.').and_then(|(a, b)| Some(Version(a.parse().ok()?, b.parse().ok()?)));
    let v = parsed.ok_or_else(|| {
        ApiError::bad_request(format!(
            "API Version String {entry} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
    })?;
    if v < MIN_VERSION || v > MAX_VERSION {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Version {v} is not supported by the API. Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}."),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("openstack-api-version", v.parse().unwrap());
        m
    }

    #[test]
    fn negotiates_like_cinder() {
        assert_eq!(negotiate(&HeaderMap::new()).unwrap(), Version(3, 0));
        assert_eq!(negotiate(&h("volume 3.64")).unwrap(), Version(3, 64));
        assert_eq!(negotiate(&h("compute 2.1, volume 3.5")).unwrap(), Version(3, 5));
        assert_eq!(negotiate(&h("volume latest")).unwrap(), MAX_VERSION);
        assert_eq!(negotiate(&h("volume 3.99")).unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(negotiate(&h("volume 3.x")).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(negotiate(&h("compute 2.1")).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
