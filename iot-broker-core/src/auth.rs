//! The questions the broker asks its owner: may this client connect, publish, subscribe, receive?
//! The broker program answers them with AWS IoT policies; tests use [`AllowAll`] or a closure-free
//! table of their own.

use std::sync::Arc;

use crate::connection::ConnectionId;

/// Who is on a connection, as the broker knows it once CONNECT has been read.
///
/// An authorizer that keeps state per client keys it by [`Client::conn`], never by the client
/// id: during a takeover two connections carry the same client id, and the older one is
/// [forgotten](Authorizer::forget) after the newer one was admitted.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The network connection (unique for the broker's lifetime; ids are never reused).
    pub conn: ConnectionId,
    /// The MQTT client id.
    pub client_id: &'a str,
    /// What the transport authenticated (a certificate id, an access key), if anything.
    pub principal: Option<&'a str>,
    /// The peer's address, if the transport has one.
    pub remote_addr: Option<&'a str>,
}

/// A CONNECT as the authorizer sees it.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// The client.
    pub client: Client<'a>,
    /// The user name field.
    pub username: Option<&'a str>,
    /// The password field.
    pub password: Option<&'a [u8]>,
    /// Whether the client asked for a clean session (`false`: a persistent one).
    pub clean_session: bool,
    /// The will's topic, if the CONNECT has one (its publication is also put to
    /// [`Authorizer::publish`] at connect time).
    pub will_topic: Option<&'a str>,
}

/// Why a CONNECT is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectDenied {
    /// The credentials are wrong (CONNACK 0x04 in the standard profile).
    BadCredentials,
    /// The principal may not connect as this client (CONNACK 0x05 in the standard profile).
    NotAuthorized,
}

/// What the transport learned about a connection before any MQTT byte (set when it is opened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportInfo {
    /// The authenticated principal: a certificate id, `{account}/{access key}` for SigV4, ...
    pub principal: Option<Arc<str>>,
    /// The peer's IP address as text.
    pub remote_addr: Option<Arc<str>>,
}

/// Authorization of each MQTT action; the broker asks before it acts.
///
/// The broker remembers the answers to [`publish`](Self::publish) and
/// [`receive`](Self::receive) per connection and topic (at most 64 topics per connection; a
/// full cache is emptied and refills), and asks again only when [`generation`](Self::generation)
/// changes or the program borrowed the authorizer through
/// [`Broker::authorizer_mut`](crate::Broker::authorizer_mut). An implementation whose answers
/// change behind the broker's back (a registry shared with another thread) must report it
/// through `generation`. The methods take `&mut self` so an implementation may keep state per
/// connection. Every method has a permissive default; override what you check.
pub trait Authorizer {
    /// May this CONNECT proceed?
    fn connect(&mut self, request: &ConnectRequest<'_>) -> Result<(), ConnectDenied> {
        let _ = request;
        Ok(())
    }

    /// May `client` publish to `topic` (with the RETAIN flag `retain`)? Also asked for a will
    /// at connect time. The answer is cached per connection, topic and flag (see the trait doc).
    #[must_use]
    fn publish(&mut self, client: &Client<'_>, topic: &str, retain: bool) -> bool {
        let _ = (client, topic, retain);
        true
    }

    /// May `client` subscribe to `filter`?
    #[must_use]
    fn subscribe(&mut self, client: &Client<'_>, filter: &str) -> bool {
        let _ = (client, filter);
        true
    }

    /// May `client` receive a message on `topic`? Asked before a delivery; the answer is cached
    /// per connection and topic until [`generation`](Self::generation) changes, so a revoked
    /// permission bites live subscriptions from the next delivery after the change.
    #[must_use]
    fn receive(&mut self, client: &Client<'_>, topic: &str) -> bool {
        let _ = (client, topic);
        true
    }

    /// A number that changes whenever any answer of this authorizer may change (a policy,
    /// certificate, thing or group changed). The broker drops its cached answers when the value
    /// differs from the one at caching time; it asks once per PUBLISH and once per batch of
    /// deliveries to a connection, so it should be cheap. Default: 0, for an authorizer whose
    /// answers change only through [`Broker::authorizer_mut`](crate::Broker::authorizer_mut)
    /// (which drops the caches by itself) or never.
    fn generation(&self) -> u64 {
        0
    }

    /// Forget anything kept about connection `conn`: it has closed. Called once for every
    /// connection the broker closes or loses, whether or not its CONNECT was accepted (an
    /// authorizer may have stored state in [`Authorizer::connect`] before the will check
    /// refused the CONNECT).
    fn forget(&mut self, conn: ConnectionId) {
        let _ = conn;
    }
}

/// Allows everything: for tests and for a broker that trusts its network.
///
/// ```
/// use iot_broker_core::{Broker, profile::Profile};
/// use iot_broker_core::auth::{AllowAll, Authorizer, Client, TransportInfo};
/// // Connection ids come from the broker.
/// let mut broker = Broker::builder(Profile::aws_iot()).build(0);
/// let conn = broker.open(TransportInfo::default(), 0);
/// let client = Client { conn, client_id: "car1", principal: None, remote_addr: None };
/// assert!(AllowAll.publish(&client, "any/topic", true));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {}
