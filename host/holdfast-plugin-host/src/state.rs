//! What a store holds for one driver call.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use holdfast_driver::OpContext;

use crate::network::NetworkGate;

pub struct HostState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    /// `wasi:http` requests go through the backend's network grant.
    pub network: NetworkGate,
    pub table: ResourceTable,
    pub limits: crate::limiter::GuestLimiter,
    pub op: OpContext,
    /// The backend's object store as this operation may see it (`grants.store`).
    pub objects: Option<holdfast_store::ScopedStore>,
    /// The backend's RBD pools as this operation may see them (`grants.rbd`).
    pub rbd: Option<crate::imports::rbd::RbdScope>,
    /// Chunks handed to the guest and not yet dropped.
    pub live_chunks: usize,
    /// `held-bytes` the guest has alive.
    pub live_held: usize,
    /// Chunk streams open.
    pub live_streams: usize,
    /// This instance's place under the backend's `instances` grant.
    pub _permit: Option<crate::gate::InstancePermit>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.network }
    }
}
