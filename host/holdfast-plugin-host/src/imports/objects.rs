//! `holdfast:backup/objects` (since 0.2.1): the backend's object store, every call
//! checked against the operation's scope (`holdfast_store`). A denied or malformed
//! request is not an answer the driver may ignore: it traps, so the operation fails
//! with the reason whatever the driver would have done next.

use holdfast_chunk::{BlockDigests, RestoreJob};
use holdfast_store::{ScopedStore, StoreError as HostStoreError};
use wasmtime::component::Resource;

use crate::bindings::holdfast::backup::objects::{Host, StoreError};
use crate::bindings::holdfast::backup::types::{Compression, VolumeError};
use crate::imports::volume::{ChunkRes, TargetRes, to_host};
use crate::limits::{MAX_WRITE_DATA, MAX_WRITE_LENGTH};
use crate::state::HostState;

type Answer<T> = wasmtime::Result<Result<T, StoreError>>;

fn answer<T>(call: &str, r: Result<T, HostStoreError>) -> Answer<T> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(HostStoreError::NotFound(m)) => Ok(Err(StoreError::NotFound(m))),
        Err(HostStoreError::Denied(why)) => Err(wasmtime::Error::msg(format!("objects.{call}: denied: {why}"))),
        Err(e) => Ok(Err(StoreError::Io(e.to_string()))),
    }
}

/// The operation's store; a backend without one traps the call.
fn store<'a>(objects: &'a mut Option<ScopedStore>, call: &str) -> wasmtime::Result<&'a mut ScopedStore> {
    objects.as_mut().ok_or_else(|| {
        wasmtime::Error::msg(format!("objects.{call}: this backend grants no object store (grants.store)"))
    })
}

impl Host for HostState {
    fn put(&mut self, container: String, name: String, data: Vec<u8>) -> Answer<()> {
        let r = store(&mut self.objects, "put")?.put(&container, &name, &data);
        answer("put", r)
    }

    fn put_chunk(&mut self, container: String, name: String, chunk: Resource<ChunkRes>) -> Answer<()> {
        let Self { table, objects, .. } = self;
        let bytes = table.get(&chunk)?.chunk.stored();
        answer("put-chunk", store(objects, "put-chunk")?.put(&container, &name, &bytes))
    }

    fn get(&mut self, container: String, name: String) -> Answer<Vec<u8>> {
        let r = store(&mut self.objects, "get")?.get(&container, &name);
        answer("get", r)
    }

    fn append(&mut self, container: String, name: String, data: Vec<u8>) -> Answer<()> {
        let r = store(&mut self.objects, "append")?.append(&container, &name, &data);
        answer("append", r)
    }

    fn get_range(&mut self, container: String, name: String, offset: u64, length: u32) -> Answer<Vec<u8>> {
        let r = store(&mut self.objects, "get-range")?.get_range(&container, &name, offset, length);
        answer("get-range", r)
    }

    #[allow(clippy::too_many_arguments)]
    fn restore_object(
        &mut self,
        container: String,
        name: String,
        target: Resource<TargetRes>,
        offset: u64,
        length: u64,
        compression: Compression,
        block_size: u32,
        sha256s: Vec<u8>,
    ) -> wasmtime::Result<Result<(), VolumeError>> {
        if length > MAX_WRITE_LENGTH {
            return Ok(Err(VolumeError::Invalid(format!(
                "an object of {length} bytes is over the host's limit of {MAX_WRITE_LENGTH}"
            ))));
        }
        // Read no more of it than a write may take, so a longer one is refused without
        // the rest of it in memory.
        let mut data = self.table.get(&target)?.writer.spare_buffer();
        let read =
            store(&mut self.objects, "restore-object")?.get_at_most(&container, &name, MAX_WRITE_DATA, &mut data);
        match answer("restore-object", read)? {
            Ok(()) if data.len() > MAX_WRITE_DATA => {
                return Ok(Err(VolumeError::Invalid(format!(
                    "{container}/{name} is over {MAX_WRITE_DATA} bytes, the most one object may store"
                ))));
            }
            Ok(()) => {}
            Err(StoreError::NotFound(m) | StoreError::Io(m)) => return Ok(Err(VolumeError::Io(m))),
        }
        let blocks = Some(BlockDigests { block_size, digests: sha256s });
        let job = RestoreJob { offset, length, compression: to_host(compression), data, md5: None, blocks };
        self.queue(&target, job)
    }

    fn list(&mut self, container: String, prefix: String) -> Answer<Vec<String>> {
        let r = store(&mut self.objects, "list")?.list(&container, &prefix);
        answer("list", r)
    }

    fn delete(&mut self, container: String, name: String) -> Answer<()> {
        let r = store(&mut self.objects, "delete")?.delete(&container, &name);
        answer("delete", r)
    }

    fn flush(&mut self) -> Answer<()> {
        let r = store(&mut self.objects, "flush")?.flush();
        answer("flush", r)
    }
}
