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

    /// `key` as a boolean in oslo.config's spellings (true/false, yes/no, on/off, 1/0,
    /// t/f, y/n; any case), `None` when it is not set.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, DriverError> {
        self.get(key)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" | "t" | "y" => Ok(true),
                "false" | "no" | "off" | "0" | "f" | "n" => Ok(false),
                _ => Err(DriverError::Invalid(format!("setting {key} = {v:?} is not true or false"))),
            })
            .transpose()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_oslo_spellings() {
        let s = |v: &str| Settings::new(vec![Setting { key: "k".into(), value: v.into() }]);
        for v in ["true", "Yes", "ON", "1", "t", "y"] {
            assert_eq!(s(v).bool("k").unwrap(), Some(true), "{v}");
        }
        for v in ["false", "No", "off", "0", "F", "n"] {
            assert_eq!(s(v).bool("k").unwrap(), Some(false), "{v}");
        }
        assert!(s("maybe").bool("k").is_err());
        assert_eq!(Settings::new(vec![]).bool("k").unwrap(), None);
    }
}
