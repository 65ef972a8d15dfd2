//! The store's resource limiter: one budget for all of an instance's linear memories
//! together, and one for all its tables' elements — a per-memory cap would let a
//! component with many memories use many times its grant.

use wasmtime::ResourceLimiter;

use crate::limits::{INSTANCES, MEMORIES, TABLE_ELEMENTS, TABLES};

pub struct GuestLimiter {
    memory_cap: usize,
    memory_used: usize,
    table_used: usize,
}

impl GuestLimiter {
    /// `memory_cap` bytes across every linear memory of the instance.
    pub fn new(memory_cap: usize) -> Self {
        GuestLimiter { memory_cap, memory_used: 0, table_used: 0 }
    }

    /// The driver's memory grant.
    pub fn memory_cap(&self) -> usize {
        self.memory_cap
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
        if after > self.memory_cap {
            // An error traps the guest with this reason (a refused grow alone could be ignored).
            return Err(wasmtime::Error::msg(format!(
                "memory limit: the instance asked for {after} bytes of linear memory in all, over its grant of {}",
                self.memory_cap
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
}
