//! What a store holds for one driver call.

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use holdfast_driver::OpContext;

pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    pub op: OpContext,
    /// Chunks handed to the guest and not yet dropped.
    pub live_chunks: usize,
    /// This instance's place under the backend's `instances` grant.
    pub _permit: Option<crate::gate::InstancePermit>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
