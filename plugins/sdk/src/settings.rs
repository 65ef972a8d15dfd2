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
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| DriverError::Invalid(format!("setting {key} = {v:?} is not a whole number"))),
        }
    }
}
