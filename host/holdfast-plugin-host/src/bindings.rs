//! Host bindings for the newest WIT, `holdfast:backup@0.2.8` (0.2.0-0.2.7 components
//! bind to them too: wasmtime matches `@0.2.x` imports and exports to `@0.2.8` by semver).
//! `wasi:io` (a chunk writes into an output stream, held bytes read from an input stream) is wasmtime-wasi's own, so a stream
//! a driver got from `wasi:http` is the same resource here. Resources map to host
//! types in `imports::volume`; every import is trappable so a bad handle traps the
//! guest. Older versions bind in their own `since_v*` module and convert to these.

wasmtime::component::bindgen!({
    path: "../../wit/holdfast-backup@0.2.8",
    world: "backup-driver",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "holdfast:backup/volume.source": crate::imports::volume::SourceRes,
        "holdfast:backup/volume.chunk-stream": crate::imports::volume::StreamRes,
        "holdfast:backup/volume.chunk": crate::imports::volume::ChunkRes,
        "holdfast:backup/volume.target": crate::imports::volume::TargetRes,
        "holdfast:backup/volume.held-bytes": crate::imports::volume::HeldRes,
        "wasi:io/streams": wasmtime_wasi::p2::bindings::io::streams,
        "wasi:io/poll": wasmtime_wasi::p2::bindings::io::poll,
        "wasi:io/error": wasmtime_wasi::p2::bindings::io::error,
    },
});
