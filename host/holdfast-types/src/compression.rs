//! [`Compression`]: Cinder's compression names, spelled once for the host, the SDK and
//! the drivers. `gzip` and `bzip2` are only names: Cinder records the configured name,
//! and "gzip" data is a zlib (RFC 1950) stream, not a gzip file.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Zlib,
    Gzip,
    Bz2,
    Bzip2,
    Zstd,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression algorithm {0:?} (expected none, off, no, zlib, gzip, bz2, bzip2 or zstd)")]
pub struct UnknownCompression(pub String);

impl Compression {
    /// The name recorded in Cinder's metadata.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Gzip => "gzip",
            Compression::Bz2 => "bz2",
            Compression::Bzip2 => "bzip2",
            Compression::Zstd => "zstd",
        }
    }

    /// Parse a configured or recorded name, case-insensitively, with Cinder's aliases.
    pub fn parse(name: &str) -> Result<Self, UnknownCompression> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "none" | "off" | "no" => Compression::None,
            "zlib" => Compression::Zlib,
            "gzip" => Compression::Gzip,
            "bz2" => Compression::Bz2,
            "bzip2" => Compression::Bzip2,
            "zstd" => Compression::Zstd,
            _ => return Err(UnknownCompression(name.to_owned())),
        })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_with_cinders_aliases() {
        for c in [
            Compression::None,
            Compression::Zlib,
            Compression::Gzip,
            Compression::Bz2,
            Compression::Bzip2,
            Compression::Zstd,
        ] {
            assert_eq!(Compression::parse(c.name()).unwrap(), c);
        }
        assert_eq!(Compression::parse("OFF").unwrap(), Compression::None);
        assert_eq!(Compression::parse("Zstd").unwrap(), Compression::Zstd);
        assert!(Compression::parse("lz4").is_err());
    }
}
