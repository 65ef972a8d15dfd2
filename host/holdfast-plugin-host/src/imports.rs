//! Host interfaces of the `backup-driver` world, one module each.

pub mod host;
pub mod objects;
pub mod rbd;
pub mod volume;

// `types` defines only records and variants: nothing to implement.
impl crate::bindings::holdfast::backup::types::Host for crate::state::HostState {}
