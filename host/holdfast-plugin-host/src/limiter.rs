//! The store's resource limiter: one budget for all of an instance's linear memories
//! together, and one for all its tables' elements — a per-memory cap would let a
//! component with many memories use many times its grant. Bytes the host holds on the
//! driver's behalf (chunks it keeps, `held-bytes`) come out of the memory budget too:
//! they stand for copies the driver would otherwise have made in its own memory.

use wasmtime::ResourceLimiter;

use crate::limits::{INSTANCES, MEMORIES, TABLE_ELEMENTS, TABLES};

pub struct GuestLimiter {
    memory_cap: usize,
    memory_used: usize,
    /// Bytes the host holds for the guest.
    held: u64,
    table_used: usize,
}

impl GuestLimiter {
    /// `memory_cap` bytes across every linear memory of the instance.
    pub fn new(memory_cap: usize) -> Self {
        GuestLimiter { memory_cap, memory_used: 0, held: 0, table_used: 0 }
    }

    /// What the grant has left for the host to hold: neither the guest's memories nor
    /// what the host already holds for it.
    pub fn holdable(&self) -> u64 {
        (self.memory_cap as u64).saturating_sub(self.memory_used as u64).saturating_sub(self.held)
    }

    /// Count `bytes` more held for the guest, if the grant has room: else the reason.
    pub fn hold(&mut self, bytes: u64) -> Result<(), String> {
        if bytes > self.holdable() {
            return Err(format!(
                "{} bytes held for the driver and {} of its own memory would pass its memory grant of {}",
                self.held + bytes,
                self.memory_used,
                self.memory_cap
            ));
        }
        self.held += bytes;
        Ok(())
    }

    /// `bytes` held for the guest given back.
    pub fn release(&mut self, bytes: u64) {
        self.held = self.held.saturating_sub(bytes);
    }
}

impl Drop for GuestLimiter {
    /// Linear memory never shrinks: what the instance ends with is its peak.
    fn drop(&mut self) {
        tracing::debug!(memory_bytes = self.memory_used, memory_cap = self.memory_cap, "instance ended");
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let after = self.memory_used.saturating_sub(current).saturating_add(desired);
        if (after as u64).saturating_add(self.held) > self.memory_cap as u64 {
            // An error traps the guest with this reason (a refused grow alone could be ignored).
            return Err(wasmtime::Error::msg(format!(
                "memory limit: the instance asked for {after} bytes of linear memory in all (and the host holds {} \
                 for it), over its grant of {}",
                self.held, self.memory_cap
            )));
        }
        self.memory_used = after;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let after = self.table_used.saturating_sub(current).saturating_add(desired);
        if after > TABLE_ELEMENTS {
            return Err(wasmtime::Error::msg(format!(
                "table limit: the instance asked for {after} table elements in all, over {TABLE_ELEMENTS}"
            )));
        }
        self.table_used = after;
        Ok(true)
    }

    fn instances(&self) -> usize {
        INSTANCES
    }

    fn tables(&self) -> usize {
        TABLES
    }

    fn memories(&self) -> usize {
        MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_by_every_memory_and_table() {
        let mut l = GuestLimiter::new(256 << 20);
        assert!(l.memory_growing(0, 200 << 20, None).unwrap());
        // A second memory may not take what the first already has.
        assert!(l.memory_growing(0, 100 << 20, None).is_err());
        assert!(l.memory_growing(0, 56 << 20, None).unwrap());
        // Growing the first one by a page more is over the budget too.
        assert!(l.memory_growing(200 << 20, (200 << 20) + 65_536, None).is_err());
        assert!(l.table_growing(0, TABLE_ELEMENTS - 10, None).unwrap());
        assert!(l.table_growing(0, 11, None).is_err());
    }

    #[test]
    fn what_the_host_holds_for_the_guest_comes_out_of_the_same_budget() {
        let mut l = GuestLimiter::new(64 << 20);
        assert!(l.memory_growing(0, 16 << 20, None).unwrap());
        assert_eq!(l.holdable(), 48 << 20);
        l.hold(40 << 20).unwrap();
        // Neither the host nor the guest's memory may take what the other has.
        assert!(l.hold(9 << 20).unwrap_err().contains("would pass its memory grant"));
        assert!(l.memory_growing(16 << 20, 25 << 20, None).is_err());
        l.release(40 << 20);
        assert!(l.memory_growing(16 << 20, 25 << 20, None).unwrap());
        assert_eq!(l.holdable(), 39 << 20);
    }
}
