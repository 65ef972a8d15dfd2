//! `holdfast:backup/host`: logging, cancellation, object location.

use std::sync::atomic::Ordering;

use crate::bindings::holdfast::backup::host::{Host, Level};
use crate::state::HostState;

/// Longest log line a guest may emit; longer lines are cut, not refused.
const MAX_LOG_LINE: usize = 4096;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message = holdfast_driver::untrusted::char_prefix(&message, MAX_LOG_LINE);
        match level {
            Level::Trace => tracing::trace!(target: "holdfast::driver", "{message}"),
            Level::Debug => tracing::debug!(target: "holdfast::driver", "{message}"),
            Level::Info => tracing::info!(target: "holdfast::driver", "{message}"),
            Level::Warn => tracing::warn!(target: "holdfast::driver", "{message}"),
            Level::Error => tracing::error!(target: "holdfast::driver", "{message}"),
        }
        Ok(())
    }

    fn cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.op.cancel.load(Ordering::Relaxed))
    }

    fn record_location(&mut self, container: String, service_metadata: String) -> wasmtime::Result<()> {
        if let Err(why) = holdfast_driver::untrusted::check_location(&container, &service_metadata) {
            return Err(wasmtime::Error::msg(format!("record-location: {why}")));
        }
        if let Some(cb) = self.op.on_location.as_mut() {
            cb(&container, &service_metadata).map_err(|why| wasmtime::Error::msg(format!("record-location: {why}")))?;
        }
        // From now on this backup may write its own objects, and only those.
        self.network
            .bind_write(holdfast_store::Location::new(container.clone(), service_metadata.clone()))
            .map_err(|why| wasmtime::Error::msg(format!("record-location: {why}")))?;
        if let Some(objects) = self.objects.as_mut() {
            objects
                .bind_write(holdfast_store::Location::new(container, service_metadata))
                .map_err(|why| wasmtime::Error::msg(format!("record-location: {why}")))?;
        }
        Ok(())
    }
}
