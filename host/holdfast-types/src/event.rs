//! [`EventType`]: Cinder's backup notification names (`backup.create.start`,
//! `backup.createprogress`, `backup.restore.error`, …), typed and spelled once.

use std::fmt;
use std::str::FromStr;

/// The operation a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventOp {
    Create,
    Restore,
    Delete,
    /// An admin's `os-reset_status`.
    ResetStatus,
}

/// Where in the operation it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventPhase {
    Start,
    /// Cinder's `backup.<op>progress` (no dot before `progress`).
    Progress,
    End,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventType {
    pub op: EventOp,
    pub phase: EventPhase,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl EventOp {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOp::Create => "create",
            EventOp::Restore => "restore",
            EventOp::Delete => "delete",
            EventOp::ResetStatus => "reset_status",
        }
    }
}

impl EventType {
    pub const fn new(op: EventOp, phase: EventPhase) -> EventType {
        EventType { op, phase }
    }

    /// Cinder's priority: `ERROR` for `*.error`, else `INFO`.
    pub fn priority(self) -> &'static str {
        if self.phase == EventPhase::Error { "ERROR" } else { "INFO" }
    }

    /// Whether the operation is over (`.end` or `.error`).
    pub fn is_final(self) -> bool {
        matches!(self.phase, EventPhase::End | EventPhase::Error)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.op.as_str();
        match self.phase {
            EventPhase::Start => write!(f, "backup.{op}.start"),
            EventPhase::Progress => write!(f, "backup.{op}progress"),
            EventPhase::End => write!(f, "backup.{op}.end"),
            EventPhase::Error => write!(f, "backup.{op}.error"),
        }
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, UnknownEventType> {
        let unknown = || UnknownEventType(s.to_owned());
        let rest = s.strip_prefix("backup.").ok_or_else(unknown)?;
        let (op, phase) = match rest.split_once('.') {
            Some((op, "start")) => (op, EventPhase::Start),
            Some((op, "end")) => (op, EventPhase::End),
            Some((op, "error")) => (op, EventPhase::Error),
            Some(_) => return Err(unknown()),
            None => (rest.strip_suffix("progress").ok_or_else(unknown)?, EventPhase::Progress),
        };
        let op = match op {
            "create" => EventOp::Create,
            "restore" => EventOp::Restore,
            "delete" => EventOp::Delete,
            "reset_status" => EventOp::ResetStatus,
            _ => return Err(unknown()),
        };
        Ok(EventType { op, phase })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cinders_names_round_trip() {
        for op in [EventOp::Create, EventOp::Restore, EventOp::Delete, EventOp::ResetStatus] {
            for phase in [EventPhase::Start, EventPhase::Progress, EventPhase::End, EventPhase::Error] {
                let t = EventType::new(op, phase);
                assert_eq!(t.to_string().parse::<EventType>().unwrap(), t);
            }
        }
        assert_eq!(EventType::new(EventOp::Create, EventPhase::Progress).to_string(), "backup.createprogress");
        assert_eq!(EventType::new(EventOp::Restore, EventPhase::Error).priority(), "ERROR");
        for bad in ["backup.create", "backup.copy.start", "volume.create.start", "backup.create.done", ""] {
            assert!(bad.parse::<EventType>().is_err(), "{bad}");
        }
    }
}
