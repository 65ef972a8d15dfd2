//! The operator's driver configuration as typed values.

use crate::{DriverError, Setting};

pub struct Settings(Vec<Setting>);

impl Settings {
    pub fn new(settings: Vec<Setting>) -> Self {
        Settings(settings)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|s| s.key == key).map(|s| s.value.as_str())
    }

    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, DriverError> {
        Ok(self.u64(key)?.unwrap_or(default))
    }

    /// `key` as a whole number, `None` when it is not set.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, DriverError> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| DriverError::Invalid(format!("setting {key} = {v:?} is not a whole number")))
            })
            .transpose()
    }
}
