//! Which `holdfast:backup` WIT versions this host loads, and which one a component was
//! built for — read from its export names (`holdfast:backup/driver@0.1.0`) after it is
//! compiled and before anything of it runs. One function owns the range (Zed's
//! `since_v*` model): a new WIT version adds a module converting it, and an entry here.

use wasmtime::component::Component;

/// The interface every backup driver exports.
const DRIVER_EXPORT: &str = "holdfast:backup/driver@";

/// The WIT versions this host can load, oldest first.
pub fn supported_wit_versions() -> &'static [&'static str] {
    &["0.1.0"]
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
pub fn component_wit_version(component: &Component) -> Result<String, WitMismatch> {
    let engine = crate::engine::engine();
    let ty = component.component_type();
    let names: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let supported = supported_wit_versions();
    let Some(found) = names.iter().find_map(|n| n.strip_prefix(DRIVER_EXPORT)) else {
        let exports = if names.is_empty() { "nothing".to_owned() } else { names.join(", ") };
        return Err(WitMismatch::NotADriver { exports, want: supported.join(" or ") });
    };
    if !supported.contains(&found) {
        return Err(WitMismatch::Unsupported { found: found.to_owned(), supported: supported.join(", ") });
    }
    Ok(found.to_owned())
}
