//! Outbound events: their types, where they go, and the states of a delivery.
//! Pure names and parsing; `events/` does the sending.

use serde::{Serialize, Serializer};

/// What happened. The first three go to a client's callback URL (and a
/// client may choose among them); `GenerationRecorded` is the operators'
/// metrics event, forwarded to `METRICS_ENDPOINT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    JobCompleted,
    JobFailed,
    GenerationCompleted,
    GenerationRecorded,
}

impl EventType {
    /// The types a client can choose for its callbacks.
    pub const CALLBACKS: [EventType; 3] = [EventType::JobCompleted, EventType::JobFailed, EventType::GenerationCompleted];
    pub const ALL: [EventType; 4] =
        [EventType::JobCompleted, EventType::JobFailed, EventType::GenerationCompleted, EventType::GenerationRecorded];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::JobCompleted => "job.completed",
            EventType::JobFailed => "job.failed",
            EventType::GenerationCompleted => "generation.completed",
            EventType::GenerationRecorded => "generation.recorded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    pub fn destination(self) -> Destination {
        match self {
            EventType::GenerationRecorded => Destination::Metrics,
            _ => Destination::Callback,
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Who receives a delivery: the client's back end, or the operators' metrics back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Callback,
    Metrics,
}

impl Destination {
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Callback => "callback",
            Destination::Metrics => "metrics",
        }
    }
}

/// A delivery's state. `Pending` and `Retrying` have a queue message on its
/// way; the other three are at rest until an admin redelivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Enqueued, not attempted yet.
    Pending,
    /// At least one attempt failed; `next_attempt_at` says when the next one is.
    Retrying,
    /// A 2xx came back.
    Delivered,
    /// Every attempt failed (the message went to the dead-letter queue), or
    /// there was nowhere to deliver it.
    Failed,
    /// The client's callbacks are paused: not attempted.
    Paused,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Paused => "paused",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// A queue message for this run is still on its way.
    pub fn is_in_flight(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Retrying)
    }
}

/// A client's choice of callback event types: `None` (the default) is every
/// type, including types added later; otherwise exactly the listed ones.
pub fn parse_callback_types(raw: &[String]) -> Result<Vec<EventType>, String> {
    if raw.is_empty() {
        return Err("list at least one event type (set `webhook_url` to null to stop callbacks)".into());
    }
    let mut out: Vec<EventType> = Vec::with_capacity(raw.len());
    for name in raw {
        let t = EventType::parse(name.trim())
            .filter(|t| t.destination() == Destination::Callback)
            .ok_or_else(|| format!("`{name}` is not a callback event type ({})", callback_type_names()))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

pub fn callback_type_names() -> String {
    EventType::CALLBACKS.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_through_their_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("job.done"), None);
        assert_eq!(EventType::GenerationRecorded.destination(), Destination::Metrics);
        assert_eq!(EventType::JobFailed.destination(), Destination::Callback);
    }

    #[test]
    fn statuses_round_trip_and_only_pending_and_retrying_are_in_flight() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
        let in_flight: Vec<_> = DeliveryStatus::ALL.into_iter().filter(|s| s.is_in_flight()).collect();
        assert_eq!(in_flight, vec![DeliveryStatus::Pending, DeliveryStatus::Retrying]);
    }

    #[test]
    fn a_client_may_choose_callback_types_but_not_the_metrics_event() {
        let chosen = parse_callback_types(&["job.failed".into(), " job.failed".into(), "generation.completed".into()]);
        assert_eq!(chosen, Ok(vec![EventType::JobFailed, EventType::GenerationCompleted]));
        assert!(parse_callback_types(&["generation.recorded".into()]).is_err());
        assert!(parse_callback_types(&["job.exploded".into()]).is_err());
        assert!(parse_callback_types(&[]).is_err(), "an empty choice is refused, not silently 'none'");
    }
}
