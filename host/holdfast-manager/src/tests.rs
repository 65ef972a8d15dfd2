//! The manager's state machine against an in-process driver ([`fake::FakeDriver`]):
//! no component is compiled or loaded, so these run in milliseconds.

mod backends;
mod fake;
mod lifecycle;
