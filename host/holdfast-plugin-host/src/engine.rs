//! One wasmtime engine per host process.

use std::sync::OnceLock;

use wasmtime::{Config, Engine};

use crate::limits::EPOCH_TICK;

/// The engine every driver runs on. Epoch interruption lets the host stop a guest
/// that spins without calling back (cancel, force delete); the ticker below is the
/// clock for it.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Guests are untrusted: no native stack overflow into host memory.
        config.max_wasm_stack(1 << 20);
        // Compiled on the loading thread: on 2 cores rayon's pool saved 7 % of a
        // 180 ms compile (a cache miss), and its threads kept the ~40 MiB they
        // allocated resident for good.
        config.parallel_compilation(false);
        let engine = Engine::new(&config).expect("static wasmtime configuration is valid");
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("hf-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawning the epoch ticker");
        engine
    })
}
