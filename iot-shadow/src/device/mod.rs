//! The device's side of the shadow protocol: what a car keeps, sends and makes of the service's
//! answers, for one shadow. Sans-IO like the rest of the crate: messages come in as
//! (topic, payload, now), requests to publish come out as [`ShadowRequest`] values, and the
//! caller owns the connection and the clock.
//!
//! The rules, where AWS leaves them to the device:
//!
//! - The device's reported state is the truth about the device. Whenever the helper learns the
//!   service's `reported` section (`get/accepted`), it sends the [`diff`](crate::diff) that makes
//!   it equal to the local one (keys the device no longer has are nulled); when there is no shadow
//!   (`get/rejected` 404), it reports its whole state.
//! - Desired changes reach the application as [`ShadowEvent::Delta`], holding only the keys whose
//!   desired value differs from what the device reports (the service's delta rule, applied to the
//!   device's own state, which may be ahead of the service's). The application applies what it
//!   accepts and [`report`](DeviceShadow::report)s what it applied.
//! - Every request carries a fresh `clientToken` (`{prefix}-{counter}`); answers are paired with
//!   pending requests by token and operation. Answers that pair with nothing (another client's,
//!   or one already given up on) are handed back as [`ShadowEvent::Unmatched`] and change
//!   nothing, except that the version an `update/accepted` shows is remembered.
//! - `update` requests carry no `version` by default ([`VersionPolicy::Omit`]): the reported
//!   section is the device's own, a merge of it is right whatever else changed, and a version
//!   would make every report race every desired change made in the cloud.
//!   [`VersionPolicy::Expect`] sends the version the device expects the shadow to have. Either
//!   way a 409 leads to one `get` (none if a `get` sent later is already pending), whose answer
//!   resyncs: never a resend of the refused update.
//! - An answer not received within the answer timeout (10 s by default) counts as lost: the
//!   request is dropped and a `get` resyncs, unless a `get` sent after it is still pending.
//!   Throttling (429) and service failures (5xx) resync after one more timeout. Other rejections
//!   (400, 413, …) are handed to the application as [`ShadowEvent::Rejected`], not retried.
//! - The service handles one connection's requests in order, so a `get`'s answer settles every
//!   request sent before it: their late answers are then unmatched.
//! - Messages older than the version the device knows (a redelivered `delta` or `documents`) are
//!   ignored ([`ShadowEvent::Stale`]).

mod answer;
mod error;
mod pending;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use self::error::DeviceShadowError;
use self::pending::{PendingRequest, PendingRequests};
use crate::json_writer::ObjectWriter;
use crate::merge::{delta, diff, merge};
use crate::topic::{
    Operation, ShadowKey, TopicKind, is_valid_shadow_name, is_valid_thing_name, parse_topic,
};

/// How long an answer may take before its request counts as lost, by default: 10 seconds.
pub const DEFAULT_ANSWER_TIMEOUT_MS: u64 = 10_000;

/// How many requests may await an answer at once, by default: 10, the service's limit of
/// in-flight requests per thing.
pub const DEFAULT_MAX_PENDING: usize = 10;

/// The longest `clientToken` prefix: the service takes tokens of at most 64 bytes, and the
/// counter takes a dash and up to 20 digits.
pub const MAX_TOKEN_PREFIX_BYTES: usize = 64 - 1 - 20;

/// Whether `update` requests carry the shadow's `version` (an optimistic lock: the service
/// refuses with 409 if the shadow's version differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionPolicy {
    /// No `version`: reports merge into whatever version the shadow has. The default.
    #[default]
    Omit,
    /// The version the device expects: the last one it learned, plus one for each of its own
    /// updates still in flight. Omitted while the device knows no version (before the first
    /// answer, or when there is no shadow). A 409 resyncs with a `get`.
    Expect,
}

/// A request for the caller to publish at QoS 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowRequest {
    /// The request topic, e.g. `$aws/things/car-1/shadow/update`.
    pub topic: String,
    /// The JSON payload.
    pub payload: String,
    /// The `clientToken` in the payload, which the answer will echo.
    pub client_token: String,
    /// `Get` or `Update`.
    pub operation: Operation,
}

/// What a message meant for the device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShadowEvent {
    /// Desired state the device does not report yet: apply what the application accepts, then
    /// [`report`](DeviceShadow::report) what was applied (and, if it likes, why the rest was not).
    Delta {
        /// The desired values that differ from the device's reported state; nested objects hold
        /// only their differing keys, arrays are whole.
        changes: Map<String, Value>,
        /// The shadow version they come from.
        version: u64,
    },
    /// A request to publish now (a resync `get`, or an `update` bringing the service's reported
    /// state to the device's).
    Publish(ShadowRequest),
    /// One of the device's updates was accepted.
    UpdateAccepted {
        /// Its token.
        client_token: String,
        /// The shadow's version after it.
        version: u64,
    },
    /// One of the device's requests was refused for a reason the helper does not handle itself
    /// (it handles 404 on `get` and 409 on `update`).
    Rejected {
        /// Its token.
        client_token: String,
        /// `Get` or `Update`.
        operation: Operation,
        /// The service's code (400, 413, 429, …).
        code: u16,
        /// The service's message.
        message: String,
    },
    /// The shadow was deleted in the cloud (`delete/accepted`). The device forgets the desired
    /// state; it reports its state again, creating the shadow anew, at its next resync.
    Deleted {
        /// The version the shadow had.
        version: u64,
    },
    /// An answer that pairs with no pending request of this device: another client's, or one
    /// the device already gave up on or settled with a later `get`. Ignored.
    Unmatched {
        /// Which answer topic.
        kind: TopicKind,
        /// The token it echoed, if any.
        client_token: Option<String>,
    },
    /// A `delta` or `documents` older than the version the device knows (a redelivery). Ignored.
    Stale {
        /// Which topic.
        kind: TopicKind,
        /// The version it carried.
        version: u64,
    },
}

/// One shadow as a device sees it: its reported state, the desired state and version it last
/// learned, and its requests awaiting answers.
///
/// Call [`on_connected`](Self::on_connected) after every (re)connect, once
/// [`subscriptions`](Self::subscriptions) are in place; hand every message on those topics to
/// [`handle_message`](Self::handle_message); report changes with [`report`](Self::report); and
/// call [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout)'s
/// deadline passes. Every request that comes out is to be published at QoS 1. Times are epoch
/// milliseconds from the caller's clock and must not go backwards.
///
/// ```
/// use iot_shadow::{DeviceShadow, MemoryShadowStore, ShadowEvent, ShadowKey, ShadowRequest, ShadowService};
/// use serde_json::{Map, Value, json};
///
/// fn object(value: Value) -> Map<String, Value> {
///     value.as_object().cloned().unwrap_or_default()
/// }
///
/// // The car publishes its requests, the cloud answers, the car handles the answers and
/// // publishes what they call for. Deltas go to the application, which here applies them all.
/// fn exchange(cloud: &mut ShadowService<MemoryShadowStore>, car: &mut DeviceShadow,
///             mut requests: Vec<ShadowRequest>, now: u64) {
///     while let Some(request) = requests.pop() {
///         let answers = cloud.handle_publish(&request.topic, request.payload.as_bytes(), now).unwrap();
///         for answer in answers {
///             for event in car.handle_message(&answer.topic, answer.payload.as_bytes(), now).unwrap() {
///                 match event {
///                     ShadowEvent::Publish(request) => requests.push(request),
///                     ShadowEvent::Delta { changes, .. } => requests.push(car.report(&changes, now)),
///                     _ => {}
///                 }
///             }
///         }
///     }
/// }
///
/// let mut cloud = ShadowService::new(MemoryShadowStore::default());
/// let key = ShadowKey::classic("car-1");
/// let mut car = DeviceShadow::new(key.clone(), "car-1-boot-7")
///     .unwrap()
///     .with_reported(object(json!({"speed": 0, "lights": "off"})));
/// let now = 1_700_000_000_000;
///
/// // Connected (and subscribed): a `get`. There is no shadow yet (404), so the car reports its
/// // whole state.
/// assert_eq!(car.subscriptions()[0], "$aws/things/car-1/shadow/update/delta");
/// let requests = car.on_connected(now);
/// assert_eq!(requests[0].payload, r#"{"clientToken":"car-1-boot-7-0"}"#);
/// exchange(&mut cloud, &mut car, requests, now);
/// let doc = cloud.get(&key, b"", now).unwrap();
/// assert_eq!(doc["state"]["reported"], json!({"speed": 0, "lights": "off"}));
///
/// // The owner wants the lights on. The car is told only what differs from what it reports.
/// let owner = cloud
///     .handle_publish("$aws/things/car-1/shadow/update",
///         br#"{"state":{"desired":{"lights":"on","speed":0}}}"#, now)
///     .unwrap();
/// let mut reports = Vec::new();
/// for message in owner {
///     for event in car.handle_message(&message.topic, message.payload.as_bytes(), now).unwrap() {
///         if let ShadowEvent::Delta { changes, .. } = event {
///             assert_eq!(changes, object(json!({"lights": "on"})));
///             // Applied: reported.
///             reports.push(car.report(&changes, now));
///         }
///     }
/// }
/// assert_eq!(reports[0].payload,
///     r#"{"state":{"reported":{"lights":"on"}},"clientToken":"car-1-boot-7-2"}"#);
/// exchange(&mut cloud, &mut car, reports, now);
/// let doc = cloud.get(&key, b"", now).unwrap();
/// assert_eq!(doc["state"].get("delta"), None);
/// assert_eq!(car.version(), Some(3));
/// assert_eq!(car.poll_timeout(), None);
/// ```
#[derive(Debug, Clone)]
pub struct DeviceShadow {
    key: ShadowKey,
    token_prefix: String,
    token_counter: u64,
    reported: Map<String, Value>,
    desired: Map<String, Value>,
    /// The newest version seen.
    version: Option<u64>,
    /// The version the shadow will have once the device's updates in flight are applied, for
    /// [`VersionPolicy::Expect`].
    expected_version: Option<u64>,
    pending: PendingRequests,
    /// A resync `get` due at this time (after a throttled or failed request, or an evicted one).
    resync_at: Option<u64>,
    answer_timeout_ms: u64,
    max_pending: usize,
    version_policy: VersionPolicy,
    /// Top-level reported keys another party writes (an edge core's predictions): never deleted
    /// by the device's reconciliation.
    foreign_reported: Vec<String>,
}

impl DeviceShadow {
    /// The device side of `key`, with an empty reported state, [`DEFAULT_ANSWER_TIMEOUT_MS`],
    /// [`DEFAULT_MAX_PENDING`] and [`VersionPolicy::Omit`].
    ///
    /// Tokens are `{token_prefix}-{counter}`, the counter starting at 0: give each run of the
    /// device its own prefix (the client id and a boot counter, say), so that answers to an
    /// earlier run's requests are not taken for this run's. At most
    /// [`MAX_TOKEN_PREFIX_BYTES`] bytes.
    pub fn new(key: ShadowKey, token_prefix: &str) -> Result<DeviceShadow, DeviceShadowError> {
        let valid_shadow = key.shadow.as_deref().is_none_or(is_valid_shadow_name);
        if !is_valid_thing_name(&key.thing) || !valid_shadow {
            return Err(DeviceShadowError::InvalidKey(key.to_string()));
        }
        if token_prefix.len() > MAX_TOKEN_PREFIX_BYTES {
            return Err(DeviceShadowError::TokenPrefixTooLong {
                len: token_prefix.len(),
                max: MAX_TOKEN_PREFIX_BYTES,
            });
        }
        Ok(DeviceShadow {
            key,
            token_prefix: token_prefix.to_string(),
            token_counter: 0,
            reported: Map::new(),
            desired: Map::new(),
            version: None,
            expected_version: None,
            pending: PendingRequests::default(),
            resync_at: None,
            answer_timeout_ms: DEFAULT_ANSWER_TIMEOUT_MS,
            max_pending: DEFAULT_MAX_PENDING,
            version_policy: VersionPolicy::Omit,
            foreign_reported: Vec::new(),
        })
    }

    /// Start from the device's actual state (merged as [`report`](Self::report) would, so `null`
    /// values are dropped). It reaches the service at the first resync.
    #[must_use]
    pub fn with_reported(mut self, reported: Map<String, Value>) -> DeviceShadow {
        merge(&mut self.reported, &reported);
        self
    }

    /// How long an answer may take before its request counts as lost (at least 1 ms).
    #[must_use]
    pub fn with_answer_timeout(mut self, timeout_ms: u64) -> DeviceShadow {
        self.answer_timeout_ms = timeout_ms.max(1);
        self
    }

    /// Top-level `reported` keys written by someone else (an edge core reporting a prediction
    /// about the device, say): the device's reconciliation after a `get` leaves them alone
    /// instead of deleting them as keys it does not report.
    ///
    /// ```
    /// use iot_shadow::{DeviceShadow, ShadowKey};
    /// let shadow = DeviceShadow::new(ShadowKey::classic("car-1"), "car-1").unwrap()
    ///     .leaving_reported(["predictedRangeKm"]);
    /// # let _ = shadow;
    /// ```
    #[must_use]
    pub fn leaving_reported<I, S>(mut self, keys: I) -> DeviceShadow
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.foreign_reported
            .extend(keys.into_iter().map(Into::into));
        self
    }

    /// How many requests may await an answer at once (at least 1). When one more is sent, the
    /// oldest is given up on and a resync is due at once.
    #[must_use]
    pub fn with_max_pending(mut self, max_pending: usize) -> DeviceShadow {
        self.max_pending = max_pending.max(1);
        self
    }

    /// Whether updates carry a `version`.
    #[must_use]
    pub fn with_version_policy(mut self, policy: VersionPolicy) -> DeviceShadow {
        self.version_policy = policy;
        self
    }

    /// Which shadow.
    pub fn key(&self) -> &ShadowKey {
        &self.key
    }

    /// The device's reported state, as it has reported it.
    pub fn reported(&self) -> &Map<String, Value> {
        &self.reported
    }

    /// The desired state as last learned from the service (whole from `get/accepted` and
    /// `update/documents`, key by key from `update/delta`).
    pub fn desired(&self) -> &Map<String, Value> {
        &self.desired
    }

    /// The newest shadow version seen, `None` before any or when there is no shadow.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// How many requests await an answer.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// The topics to subscribe to (QoS 1), before [`on_connected`](Self::on_connected):
    /// `update/delta`, `update/accepted`, `update/rejected`, `update/documents`, `get/accepted`,
    /// `get/rejected`, `delete/accepted`.
    pub fn subscriptions(&self) -> Vec<String> {
        [
            TopicKind::Delta,
            TopicKind::Accepted(Operation::Update),
            TopicKind::Rejected(Operation::Update),
            TopicKind::Documents,
            TopicKind::Accepted(Operation::Get),
            TopicKind::Rejected(Operation::Get),
            TopicKind::Accepted(Operation::Delete),
        ]
        .into_iter()
        .map(|kind| self.key.topic(kind))
        .collect()
    }

    /// After every (re)connect, once the subscriptions are in place: the requests to publish.
    ///
    /// That is one `get`. Requests of the previous connection are forgotten (their answers, if
    /// they come, are unmatched): the `get`'s answer shows what became of them, and leads to the
    /// `update` that brings the service's reported state to the device's (the whole state if
    /// there is no shadow), and to a [`ShadowEvent::Delta`] for desired state not yet applied.
    pub fn on_connected(&mut self, now_ms: u64) -> Vec<ShadowRequest> {
        self.pending.clear();
        self.resync_at = None;
        vec![self.get_request(now_ms)]
    }

    /// A `get` to resync now, for an application that wants one (after a `Deleted`, say).
    pub fn resync(&mut self, now_ms: u64) -> ShadowRequest {
        self.get_request(now_ms)
    }

    /// Report `changes` (merged as the service merges: objects key by key, `null` deletes a key,
    /// arrays and scalars replace): they are merged into the local reported state, and the
    /// `update` request `{"state":{"reported":changes},"clientToken":"…"}` comes out (with
    /// `"version":N` under [`VersionPolicy::Expect`] when the device knows one).
    ///
    /// The request is pending until answered; if its answer is lost, the resync after the
    /// timeout brings the service's reported state to the device's anyway.
    pub fn report(&mut self, changes: &Map<String, Value>, now_ms: u64) -> ShadowRequest {
        merge(&mut self.reported, changes);
        self.update_request(changes, now_ms)
    }

    /// The next time [`handle_timeout`](Self::handle_timeout) has work: when the oldest pending
    /// request counts as lost, or a resync is due. `None` when nothing waits.
    pub fn poll_timeout(&self) -> Option<u64> {
        let lost = self.pending.deadline(self.answer_timeout_ms);
        match (lost, self.resync_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Give up on requests unanswered for the answer timeout, and resync if any was given up on
    /// or a resync is due: a `get`, unless a `get` sent after them is still pending.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Vec<ShadowRequest> {
        let mut lost = self.pending.expire(now_ms, self.answer_timeout_ms);
        if self.resync_at.is_some_and(|at| at <= now_ms) {
            self.resync_at = None;
            lost = true;
        }
        // The requests left were all sent after those given up on.
        if lost && !self.pending.has_get() {
            vec![self.get_request(now_ms)]
        } else {
            Vec::new()
        }
    }

    /// Handle a message received on one of [`subscriptions`](Self::subscriptions).
    ///
    /// A topic of another shadow (or no shadow topic), a request topic, a payload that is not a
    /// JSON object and an answer without the fields it must have are errors; the state is then
    /// left as it was.
    pub fn handle_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Vec<ShadowEvent>, DeviceShadowError> {
        let kind = match parse_topic(topic) {
            Some(parsed) if parsed.key == self.key => parsed.kind,
            _ => {
                return Err(DeviceShadowError::ForeignTopic {
                    topic: topic.to_string(),
                    shadow: self.key.to_string(),
                });
            }
        };
        if let TopicKind::Request(_) = kind {
            return Err(DeviceShadowError::UnexpectedTopic {
                topic: topic.to_string(),
            });
        }
        let doc = answer::parse_object(topic, payload)?;
        match kind {
            TopicKind::Accepted(Operation::Get) => self.on_get_accepted(topic, &doc, now_ms),
            TopicKind::Rejected(Operation::Get) => self.on_get_rejected(topic, &doc, now_ms),
            TopicKind::Accepted(Operation::Update) => self.on_update_accepted(topic, &doc),
            TopicKind::Rejected(Operation::Update) => self.on_update_rejected(topic, &doc, now_ms),
            TopicKind::Delta => self.on_delta(topic, &doc),
            TopicKind::Documents => self.on_documents(topic, &doc),
            TopicKind::Accepted(Operation::Delete) => self.on_delete_accepted(topic, &doc),
            // The device sends no `delete`; requests were refused above.
            TopicKind::Rejected(Operation::Delete) | TopicKind::Request(_) => {
                Ok(vec![unmatched(kind, &doc)])
            }
        }
    }

    fn next_token(&mut self) -> String {
        let token = format!("{}-{}", self.token_prefix, self.token_counter);
        self.token_counter = self.token_counter.wrapping_add(1);
        token
    }

    fn track(&mut self, client_token: &str, operation: Operation, now_ms: u64) {
        let request = PendingRequest {
            client_token: client_token.to_string(),
            operation,
            sent_at_ms: now_ms,
        };
        let evicted = self.pending.push(request, self.max_pending).is_some();
        // The oldest was given up on to keep the bound: what became of it is learned by a
        // resync, unless this request is that resync.
        if evicted && operation != Operation::Get {
            self.resync_at = Some(self.resync_at.map_or(now_ms, |at| at.min(now_ms)));
        }
    }

    fn get_request(&mut self, now_ms: u64) -> ShadowRequest {
        let client_token = self.next_token();
        let mut payload = ObjectWriter::new();
        payload.field("clientToken", &client_token);
        self.track(&client_token, Operation::Get, now_ms);
        ShadowRequest {
            topic: self.key.topic(TopicKind::Request(Operation::Get)),
            payload: payload.finish_string(),
            client_token,
            operation: Operation::Get,
        }
    }

    fn update_request(&mut self, reported: &Map<String, Value>, now_ms: u64) -> ShadowRequest {
        let client_token = self.next_token();
        let version = match self.version_policy {
            VersionPolicy::Omit => None,
            VersionPolicy::Expect => {
                let expected = self.expected_version;
                self.expected_version = expected.map(|v| v.saturating_add(1));
                expected
            }
        };
        let mut state = ObjectWriter::new();
        state.field("reported", reported);
        let mut payload = ObjectWriter::new();
        payload
            .raw("state", &state.finish())
            .field("clientToken", &client_token)
            .optional("version", version.as_ref());
        self.track(&client_token, Operation::Update, now_ms);
        ShadowRequest {
            topic: self.key.topic(TopicKind::Request(Operation::Update)),
            payload: payload.finish_string(),
            client_token,
            operation: Operation::Update,
        }
    }

    /// A version seen in a message: the newest is kept, and an expected version behind it moves
    /// up to it (someone else updated the shadow).
    fn observe(&mut self, version: u64) {
        self.version = Some(self.version.map_or(version, |v| v.max(version)));
        self.expected_version = Some(self.expected_version.map_or(version, |v| v.max(version)));
    }

    fn is_stale(&self, version: u64) -> bool {
        self.version.is_some_and(|known| version < known)
    }

    /// A resync after one more answer timeout (throttled, or the service failed).
    fn resync_later(&mut self, now_ms: u64) {
        let at = now_ms.saturating_add(self.answer_timeout_ms);
        self.resync_at = Some(self.resync_at.map_or(at, |t| t.min(at)));
    }

    fn on_get_accepted(
        &mut self,
        topic: &str,
        doc: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<Vec<ShadowEvent>, DeviceShadowError> {
        let version = answer::required_u64(topic, doc, "version", "version")?;
        let state = answer::required_object(topic, doc, "state", "state")?;
        let desired = answer::section(topic, state, "desired", "state.desired")?;
        let cloud_reported = answer::section(topic, state, "reported", "state.reported")?;
        let Some(index) =
            answer::client_token(doc).and_then(|t| self.pending.position(t, Operation::Get))
        else {
            return Ok(vec![unmatched(TopicKind::Accepted(Operation::Get), doc)]);
        };
        self.pending.settle_through(index);
        // The whole truth as of this answer: taken as it is, not as the newest seen (after a
        // deletion more than 48 hours old, versions start again at 1).
        self.version = Some(version);
        let in_flight = u64::try_from(self.pending.updates()).unwrap_or(u64::MAX);
        self.expected_version = Some(version.saturating_add(in_flight));
        self.desired = desired;

        let mut events = Vec::new();
        let mut patch = diff(&cloud_reported, &self.reported);
        patch.retain(|key, value| !(value.is_null() && self.foreign_reported.contains(key)));
        if !patch.is_empty() {
            events.push(ShadowEvent::Publish(self.update_request(&patch, now_ms)));
        }
        let changes = delta(&self.desired, Some(&self.reported));
        if !changes.is_empty() {
            events.push(ShadowEvent::Delta { changes, version });
        }
        Ok(events)
    }

    fn on_get_rejected(
        &mut self,
        topic: &str,
        doc: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<Vec<ShadowEvent>, DeviceShadowError> {
        let (code, message) = answer::rejection(topic, doc)?;
        let token = answer::client_token(doc);
        let Some((index, client_token)) =
            token.and_then(|t| Some((self.pending.position(t, Operation::Get)?, t.to_string())))
        else {
            return Ok(vec![unmatched(TopicKind::Rejected(Operation::Get), doc)]);
        };
        if code == 404 {
            // No shadow: nothing desired, no version to build on (a deleted shadow's, unknown
            // to the device, may still count), and the device's whole state to report.
            self.pending.settle_through(index);
            self.version = None;
            self.expected_version = None;
            self.desired = Map::new();
            if self.reported.is_empty() {
                return Ok(Vec::new());
            }
            let everything = self.reported.clone();
            return Ok(vec![ShadowEvent::Publish(
                self.update_request(&everything, now_ms),
            )]);
        }
        self.pending.remove(index);
        if code == 429 || code >= 500 {
            self.resync_later(now_ms);
        }
        Ok(vec![ShadowEvent::Rejected {
            client_token,
            operation: Operation::Get,
            code,
            message,
        }])
    }

    fn on_update_accepted(
        &mut self,
        topic: &str,
        doc: &Map<String, Value>,
    ) -> Result<Vec<ShadowEvent>, DeviceShadowError> {
        let version = answer::required_u64(topic, doc, "version", "version")?;
        self.observe(version);
        let token = answer::client_token(doc);
        match token.and_then(|t| Some((self.pending.position(t, Operation::Update)?, t))) {
            Some((index, client_token)) => {
                self.pending.remove(index);
                Ok(vec![ShadowEvent::UpdateAccepted {
                    client_token: client_token.to_string(),
                    version,
                }])
            }
            None => Ok(vec![unmatched(TopicKind::Accepted(Operation::Update), doc)]),
        }
    }

    fn on_update_rejected(
        &mut self,
        topic: &str,
        doc: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<Vec<ShadowEvent>, DeviceShadowError> {
        let (code, message) = answer::rejection(topic, doc)?;
        let token = answer::client_token(doc);
        let Some((index, client_token)) =
            token.and_then(|t| Some((self.pending.position(t, Operation::Update)?, t.to_string())))
        else {
            return Ok(vec![unmatched(TopicKind::Rejected(Operation::Update), doc)]);
        };
        // A `get` sent after this update will show the shadow as it is without it.
        let covered = self.pending.get_after(index);
        self.pending.remove(index);
        if code == 409 {
            if covered {
                return Ok(Vec::new());
            }
            return Ok(vec![ShadowEvent::Publish(self.get_request(now_ms))]);
        }
        if (code == 429 || code >= 500) && !covered {
            self.resync_later(now_ms);
        }
        Ok(vec![ShadowEvent::Rejected {
            client_token,
            operation: Operation::Update,
            code,
            message,
        }])
    }

    fn on_delta(
        &mut self,
        topic: &str,
        doc: &Map<String, Value>,
    ) -> Result<Vec<ShadowEvent>, DeviceShadowError> {
        let version = answer::required_u64(topic, doc, "version", "version")?;
        let state = answer::required_object(topic, doc, "state", "state")?;
        if self.is_stale(version) {
            return Ok(vec![ShadowEvent::Stale {
                kind: TopicKind::Delta,
                version,
            }]);
        }
        self.observe(version);
        merge(&mut self.desired, state);
        let changes = delta(state, Some(&self.reported));
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![ShadowEvent::Delta { changes, version }])
    }

    fn on_documents(
        &mut self,
        topic: &str,
        doc: &Map<String, Value>,
    ) -> Result<Vec<ShadowEvent>, DeviceShadowError> {
        let current = answer::required_object(topic, doc, "current", "current")?;
        let version = answer::required_u64(topic, current, "version", "current.version")?;
        let state = answer::required_object(topic, current, "state", "current.state")?;
        let desired = answer::section(topic, state, "desired", "current.state.desired")?;
        if self.is_stale(version) {
            return Ok(vec![ShadowEvent::Stale {
                kind: TopicKind::Documents,
                version,
            }]);
        }
        self.observe(version);
        self.desired = desired;
        Ok(Vec::new())
    }

    fn on_delete_accepted(
        &mut self,
        topic: &str,
        doc: &Map<String, Value>,
    ) -> Result<Vec<ShadowEvent>, DeviceShadowError> {
        let version = answer::required_u64(topic, doc, "version", "version")?;
        if self.is_stale(version) {
            return Ok(vec![ShadowEvent::Stale {
                kind: TopicKind::Accepted(Operation::Delete),
                version,
            }]);
        }
        // A re-created shadow continues from the deleted one's version.
        self.observe(version);
        self.desired = Map::new();
        Ok(vec![ShadowEvent::Deleted { version }])
    }
}

fn unmatched(kind: TopicKind, doc: &Map<String, Value>) -> ShadowEvent {
    ShadowEvent::Unmatched {
        kind,
        client_token: answer::client_token(doc).map(str::to_string),
    }
}
