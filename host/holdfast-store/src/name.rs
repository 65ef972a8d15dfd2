//! What a driver may call a container and an object.

use crate::StoreError;

/// Longest object name (a file name on every filesystem we store on).
pub const MAX_NAME_BYTES: usize = 255;

/// A container is a relative path of plain components (Cinder's posix default is
/// `ab/cd/<volume id>`); the shared rule lives in `holdfast_types`.
pub fn check_container(container: &str) -> Result<(), StoreError> {
    if holdfast_types::is_valid_container(container) {
        Ok(())
    } else {
        Err(StoreError::Denied(format!("container {:?} is not a relative path of plain names", cut(container))))
    }
}

/// An object name is one plain file name: no `/`, not hidden, no control characters.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_BYTES
        || name.contains('/')
        || name.starts_with('.')
        || name.chars().any(char::is_control);
    if bad { Err(StoreError::Denied(format!("object name {:?} is not one plain name", cut(name)))) } else { Ok(()) }
}

/// A name cut for an error message (a hostile one may be megabytes).
pub(crate) fn cut(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_only() {
        for ok in ["volume_x_backup_y-00001", "a", "x.y"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        let long = "n".repeat(256);
        for bad in ["", ".", "..", ".hidden", "a/b", "/abs", "bell\u{7}", long.as_str()] {
            assert!(matches!(check_name(bad), Err(StoreError::Denied(_))), "{bad:?}");
        }
        assert!(check_container("9a/7f/9a7f").is_ok());
        for bad in ["", "/abs", "a/../b", "a//b", "..", "a/."] {
            assert!(matches!(check_container(bad), Err(StoreError::Denied(_))), "{bad:?}");
        }
    }
}
