//! The hook for AWS's reserved topics: a PUBLISH to a Device Shadow request topic, or to Basic
//! Ingest, is handed to a service the broker's owner plugs in (the program plugs in `iot-shadow`).
//! The service's answers are routed like any other PUBLISH.

use bytes::Bytes;

use crate::message::Message;

/// Which reserved service a PUBLISH is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedKind {
    /// `$aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}`.
    Shadow,
    /// `$aws/rules/{rule}/...`: for the rule, never delivered to subscribers.
    BasicIngest,
}

/// A PUBLISH to a reserved topic.
#[derive(Debug, Clone, Copy)]
pub struct ReservedRequest<'a> {
    /// The service.
    pub kind: ReservedKind,
    /// The publishing client, `None` for a server-side publish (HTTPS).
    pub client_id: Option<&'a str>,
    /// The topic.
    pub topic: &'a str,
    /// The payload.
    pub payload: &'a Bytes,
}

/// A service behind AWS's reserved topics.
pub trait ReservedTopicService {
    /// Handle one request at `now_ms` (Unix epoch milliseconds); return the messages to publish in
    /// answer (`.../accepted`, `.../rejected`, `.../delta`, ...), in order.
    #[must_use = "the answers must be published"]
    fn handle(&mut self, request: &ReservedRequest<'_>, now_ms: u64) -> Vec<Message>;

    /// An ordinary (not reserved) message was accepted, retained if asked and routed to its
    /// subscribers; `client_id` is its publisher (`None` for a server-side publish). A service
    /// that watches ordinary traffic (the edge core's bridge and its local shadow service, which
    /// under the Standard profile answers `$aws/things/…/shadow/…` as ordinary topics) returns
    /// messages to route in answer, as [`handle`](Self::handle) does. Default: nothing.
    #[must_use = "the answers must be published"]
    fn observe(&mut self, message: &Message, client_id: Option<&str>, now_ms: u64) -> Vec<Message> {
        let _ = (message, client_id, now_ms);
        Vec::new()
    }
}

/// No reserved services: shadow requests reach only the topic's own subscribers and Basic Ingest
/// messages go nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReservedServices;

impl ReservedTopicService for NoReservedServices {
    fn handle(&mut self, _request: &ReservedRequest<'_>, _now_ms: u64) -> Vec<Message> {
        Vec::new()
    }
}
