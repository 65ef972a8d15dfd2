//! Which `holdfast:backup` WIT versions this host loads, and which one a component was
//! built for — read from its export names (`holdfast:backup/driver@0.2.0`) after it is
//! compiled and before anything of it runs. One place owns the range (Zed's
//! `since_v*` model): a new WIT version adds a variant here and a module converting
//! the one before it.

use wasmtime::component::Component;

/// The interface every backup driver exports.
const DRIVER_EXPORT: &str = "holdfast:backup/driver@";

/// A `holdfast:backup` version this host loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitVersion {
    /// Served through `since_v0_1_0`.
    V0_1_0,
    /// Bound by the newest bindings: later 0.2.x versions only add.
    V0_2_0,
    /// Bound by the newest bindings: 0.2.2 to 0.2.8 only add (`rbd`, `stored-digests`,
    /// `write-checked`, `stored-md5`, `objects.append`/`get-range`, `write-stored`,
    /// `held-bytes`).
    V0_2_1,
    /// Bound by the newest bindings: 0.2.3 to 0.2.8 only add.
    V0_2_2,
    /// Bound by the newest bindings: 0.2.4 to 0.2.8 only add.
    V0_2_3,
    /// Bound by the newest bindings: 0.2.5 to 0.2.8 only add.
    V0_2_4,
    /// Bound by the newest bindings: 0.2.6 to 0.2.8 only add.
    V0_2_5,
    /// Bound by the newest bindings: 0.2.6 added `objects.append` and
    /// `objects.get-range` (big files written and read in pieces); 0.2.7 and 0.2.8 only add.
    V0_2_6,
    /// Bound by the newest bindings: 0.2.7 added `chunk.write-stored` (an upload's body
    /// written from host memory); 0.2.8 only adds.
    V0_2_7,
    /// The newest: `wit/holdfast-backup@0.2.8` (adds `held-bytes` and
    /// `target.write-held`: a download's body kept in host memory and written from there).
    V0_2_8,
}

impl WitVersion {
    /// Oldest first; the last one is what the SDK builds today.
    pub const SUPPORTED: [WitVersion; 10] = [
        WitVersion::V0_1_0,
        WitVersion::V0_2_0,
        WitVersion::V0_2_1,
        WitVersion::V0_2_2,
        WitVersion::V0_2_3,
        WitVersion::V0_2_4,
        WitVersion::V0_2_5,
        WitVersion::V0_2_6,
        WitVersion::V0_2_7,
        WitVersion::V0_2_8,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1_0 => "0.1.0",
            WitVersion::V0_2_0 => "0.2.0",
            WitVersion::V0_2_1 => "0.2.1",
            WitVersion::V0_2_2 => "0.2.2",
            WitVersion::V0_2_3 => "0.2.3",
            WitVersion::V0_2_4 => "0.2.4",
            WitVersion::V0_2_5 => "0.2.5",
            WitVersion::V0_2_6 => "0.2.6",
            WitVersion::V0_2_7 => "0.2.7",
            WitVersion::V0_2_8 => "0.2.8",
        }
    }

    pub fn parse(text: &str) -> Option<WitVersion> {
        Self::SUPPORTED.into_iter().find(|v| v.as_str() == text)
    }
}

/// The WIT versions this host can load, oldest first.
pub fn supported_wit_versions() -> Vec<&'static str> {
    WitVersion::SUPPORTED.iter().map(|v| v.as_str()).collect()
}

/// Why a component cannot be a driver here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitMismatch {
    #[error(
        "not a Holdfast backup driver: it exports {exports} (expected holdfast:backup/driver@{want}); build it with \
         the driver SDK"
    )]
    NotADriver { exports: String, want: String },
    #[error("built for holdfast:backup@{found}, but this host supports {supported}")]
    Unsupported { found: String, supported: String },
}

/// The `holdfast:backup` version `component` was built for, if this host supports it.
pub fn component_wit_version(component: &Component) -> Result<WitVersion, WitMismatch> {
    let engine = crate::engine::engine();
    let ty = component.component_type();
    let names: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let supported = supported_wit_versions();
    let Some(found) = names.iter().find_map(|n| n.strip_prefix(DRIVER_EXPORT)) else {
        let exports = if names.is_empty() { "nothing".to_owned() } else { names.join(", ") };
        return Err(WitMismatch::NotADriver { exports, want: supported.join(" or ") });
    };
    WitVersion::parse(found)
        .ok_or_else(|| WitMismatch::Unsupported { found: found.to_owned(), supported: supported.join(", ") })
}
