//! End-to-end tests: the real `holdfast` binary, its HTTP API and CLI, the real
//! wasm posix driver, on SQLite and (when reachable; always under CI) PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod api;
mod auth;
mod backends;
mod ceph;
mod cinder_interop;
mod clients;
mod crash;
mod driver_check;
mod events;
mod hardening;
mod hostile;
mod incremental;
mod metadata;
mod objectstore;
mod objectstore_faults;
mod operator;
mod proxy;
mod rbd;
mod records;
mod reload;
mod service;
mod skeleton;
mod snapshots;
mod swift_keystone;
mod walkthrough;
