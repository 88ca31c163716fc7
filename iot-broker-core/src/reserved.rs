//! AWS IoT's reserved `$` topics: which a client may publish to or subscribe to, and where a
//! publish to one of them goes (spec/aws-iot.md, "Reserved topics"). The standard profile has no
//! reserved namespace: there every topic is an ordinary one.

/// What a client's PUBLISH topic is, under the AWS IoT profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishTarget {
    /// An ordinary topic, routed to subscribers.
    Ordinary,
    /// A Device Shadow request (`.../shadow[/name/{s}]/{get,update,delete}`): handed to the shadow
    /// service (and also delivered to subscribers of that topic, as AWS does).
    ShadowRequest,
    /// Basic Ingest (`$aws/rules/{rule}/...`): for the rule only, never delivered to subscribers.
    BasicIngest,
    /// A reserved topic clients may not publish to (AWS closes the connection).
    Forbidden,
}

/// What a client's SUBSCRIBE filter is, under the AWS IoT profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscribeTarget {
    /// An ordinary filter, or a shared-subscription filter of ordinary topics.
    Ordinary,
    /// A filter on AWS's subscribable reserved topics (thing topics such as shadows, lifecycle
    /// events).
    Reserved,
    /// A reserved namespace clients may not subscribe to (AWS closes the connection).
    Forbidden,
}

/// Classify a PUBLISH topic under the AWS IoT profile.
pub(crate) fn classify_publish(topic: &str) -> PublishTarget {
    if !topic.starts_with('$') {
        return PublishTarget::Ordinary;
    }
    if let Some(rest) = topic.strip_prefix("$aws/rules/") {
        return match rest.split_once('/') {
            Some((rule, tail)) if !rule.is_empty() && !tail.is_empty() => {
                PublishTarget::BasicIngest
            }
            _ => PublishTarget::Forbidden,
        };
    }
    if is_shadow_request(topic) {
        return PublishTarget::ShadowRequest;
    }
    PublishTarget::Forbidden
}

/// Whether `topic` is `$aws/things/{thing}/shadow[/name/{shadow}]/{get|update|delete}`.
fn is_shadow_request(topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix("$aws/things/") else {
        return false;
    };
    let levels: Vec<&str> = rest.split('/').collect();
    let op_ok = |op: &str| matches!(op, "get" | "update" | "delete");
    match levels.as_slice() {
        [thing, "shadow", op] => !thing.is_empty() && op_ok(op),
        [thing, "shadow", "name", shadow, op] => {
            !thing.is_empty() && !shadow.is_empty() && op_ok(op)
        }
        _ => false,
    }
}

/// Classify a SUBSCRIBE filter under the AWS IoT profile. `$share/{group}/{filter}` is judged by
/// its inner filter.
pub(crate) fn classify_subscribe(filter: &str) -> SubscribeTarget {
    let inner = match mqtt_codec::split_shared(filter) {
        Some(Ok((_, inner))) => inner,
        Some(Err(_)) => return SubscribeTarget::Forbidden,
        None => filter,
    };
    if !inner.starts_with('$') {
        return SubscribeTarget::Ordinary;
    }
    // Thing topics (shadows; jobs and the rest are reserved but simply never published here) and
    // lifecycle events are subscribable. The second level must be named, so a filter cannot reach
    // across AWS's namespaces (`$aws/#`, `$aws/+/...`) into publish-only Basic Ingest.
    let mut levels = inner.split('/');
    match (levels.next(), levels.next()) {
        (Some("$aws"), Some("things" | "events")) => SubscribeTarget::Reserved,
        _ => SubscribeTarget::Forbidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_targets() {
        assert_eq!(classify_publish("cars/1/gps"), PublishTarget::Ordinary);
        assert_eq!(
            classify_publish("$aws/things/car1/shadow/update"),
            PublishTarget::ShadowRequest
        );
        assert_eq!(
            classify_publish("$aws/things/car1/shadow/name/cfg/get"),
            PublishTarget::ShadowRequest
        );
        assert_eq!(
            classify_publish("$aws/rules/store/cars/1"),
            PublishTarget::BasicIngest
        );
        // Responses are the service's to publish, and other `$` topics are refused.
        for refused in [
            "$aws/things/car1/shadow/update/accepted",
            "$aws/events/presence/connected/car1",
            "$SYS/broker/load",
        ] {
            assert_eq!(
                classify_publish(refused),
                PublishTarget::Forbidden,
                "{refused}"
            );
        }
    }

    #[test]
    fn shadow_request_shapes() {
        for ok in [
            "$aws/things/t/shadow/get",
            "$aws/things/t/shadow/delete",
            "$aws/things/t/shadow/name/s/update",
        ] {
            assert_eq!(classify_publish(ok), PublishTarget::ShadowRequest, "{ok}");
        }
        for bad in [
            "$aws/things//shadow/get",
            "$aws/things/t/shadow/patch",
            "$aws/things/t/shadow/name//get",
            "$aws/things/t/shadow/name/s/update/delta",
            "$aws/things/t/jobs/get",
            "$aws/rules/",
            "$aws/rules/r",
            "$aws/rules/r/",
        ] {
            assert_eq!(classify_publish(bad), PublishTarget::Forbidden, "{bad}");
        }
    }

    #[test]
    fn subscribe_targets() {
        assert_eq!(classify_subscribe("cars/#"), SubscribeTarget::Ordinary);
        // `#` never matches `$` topics, so it is an ordinary filter.
        assert_eq!(classify_subscribe("#"), SubscribeTarget::Ordinary);
        assert_eq!(
            classify_subscribe("$aws/things/car1/shadow/update/delta"),
            SubscribeTarget::Reserved
        );
        assert_eq!(
            classify_subscribe("$aws/events/presence/+/+"),
            SubscribeTarget::Reserved
        );
        for refused in ["$aws/rules/store/#", "$aws/#", "$SYS/#"] {
            assert_eq!(
                classify_subscribe(refused),
                SubscribeTarget::Forbidden,
                "{refused}"
            );
        }
    }

    #[test]
    fn subscribe_namespaces() {
        assert_eq!(
            classify_subscribe("$aws/events/#"),
            SubscribeTarget::Reserved
        );
        assert_eq!(
            classify_subscribe("$aws/things/+/shadow/#"),
            SubscribeTarget::Reserved
        );
        assert_eq!(classify_subscribe("$aws/+/x"), SubscribeTarget::Forbidden);
        assert_eq!(
            classify_subscribe("$share/g/cars/#"),
            SubscribeTarget::Ordinary
        );
        assert_eq!(
            classify_subscribe("$share/g/$aws/things/+/shadow/update/accepted"),
            SubscribeTarget::Reserved
        );
        assert_eq!(
            classify_subscribe("$share/g/$aws/rules/r/#"),
            SubscribeTarget::Forbidden
        );
        assert_eq!(classify_subscribe("$share//x"), SubscribeTarget::Forbidden);
    }
}
