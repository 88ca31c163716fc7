//! Per-requester evaluation with a decision cache: one connection asks the same questions (the same
//! topics) over and over, and its policies and context rarely change.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Action, Decision, Policy, RequestContext, ResourceArns, evaluate};

/// Remembered decisions for one requester, keyed by (action, resource). Bounded: when full it is
/// emptied and refilled.
#[derive(Debug, Clone)]
pub struct DecisionCache {
    map: HashMap<(Action, String), Decision>,
    capacity: usize,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions.
    pub fn new(capacity: usize) -> Self {
        DecisionCache {
            map: HashMap::new(),
            capacity,
        }
    }

    /// Forgets every decision.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Decisions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn get_or_insert(
        &mut self,
        action: Action,
        resource: String,
        decide: impl FnOnce(&str) -> Decision,
    ) -> Decision {
        if let Some(hit) = self.map.get(&(action, resource.clone())) {
            return hit.clone();
        }
        let decision = decide(&resource);
        if self.map.len() >= self.capacity {
            self.map.clear();
        }
        if self.capacity > 0 {
            self.map.insert((action, resource), decision.clone());
        }
        decision
    }
}

/// The policies of one requester (a connection), its context and resource ARNs, answering the
/// broker's questions: may it connect, publish (with retain), subscribe, receive, touch a shadow,
/// read retained messages.
///
/// ```
/// use std::sync::Arc;
/// use iot_auth::policy::{Policy, PolicyGuard, RequestContext, ResourceArns};
///
/// let policy = Policy::parse("p", r#"{"Version":"2012-10-17","Statement":[
///   {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:eu-west-1:111122223333:topic/t/*"},
///   {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:eu-west-1:111122223333:topicfilter/t/#"}]}"#).unwrap();
/// let mut guard = PolicyGuard::new(
///     vec![Arc::new(policy)],
///     ResourceArns::new("eu-west-1", "111122223333"),
///     RequestContext::for_client("c1"),
/// );
/// assert!(guard.publish("t/1", false).is_allowed());
/// assert!(!guard.publish("t/1", true).is_allowed()); // needs iot:RetainPublish too
/// assert!(guard.subscribe("t/#").is_allowed());
/// assert!(!guard.subscribe("t/+").is_allowed()); // `#` and `+` are literal in resources
/// ```
#[derive(Debug, Clone)]
pub struct PolicyGuard {
    policies: Vec<Arc<Policy>>,
    arns: ResourceArns,
    context: RequestContext,
    cache: DecisionCache,
}

/// Decisions a [`PolicyGuard`] remembers by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

impl PolicyGuard {
    /// A guard with a decision cache of [`DEFAULT_CACHE_CAPACITY`].
    pub fn new(policies: Vec<Arc<Policy>>, arns: ResourceArns, context: RequestContext) -> Self {
        Self::with_cache_capacity(policies, arns, context, DEFAULT_CACHE_CAPACITY)
    }

    /// A guard remembering at most `capacity` decisions (0: evaluate every time).
    pub fn with_cache_capacity(
        policies: Vec<Arc<Policy>>,
        arns: ResourceArns,
        context: RequestContext,
        capacity: usize,
    ) -> Self {
        PolicyGuard {
            policies,
            arns,
            context,
            cache: DecisionCache::new(capacity),
        }
    }

    /// The requester's context.
    pub fn context(&self) -> &RequestContext {
        &self.context
    }

    /// Replaces the context (say, once the client id is known); cached decisions are dropped.
    pub fn set_context(&mut self, context: RequestContext) {
        self.context = context;
        self.cache.clear();
    }

    /// Replaces the policies (after an attach, detach or new version); cached decisions are dropped.
    pub fn set_policies(&mut self, policies: Vec<Arc<Policy>>) {
        self.policies = policies;
        self.cache.clear();
    }

    /// The policies evaluated.
    pub fn policies(&self) -> &[Arc<Policy>] {
        &self.policies
    }

    /// The resource ARN builder.
    pub fn arns(&self) -> &ResourceArns {
        &self.arns
    }

    /// Decides `action` on `resource`, from the cache when it can.
    pub fn decide(&mut self, action: Action, resource: String) -> Decision {
        let policies = &self.policies;
        let context = &self.context;
        self.cache.get_or_insert(action, resource, |resource| {
            evaluate(policies.iter().map(Arc::as_ref), action, resource, context)
        })
    }

    /// `iot:Connect` on `client/{client_id}`. Not cached: the connect-only condition keys
    /// (`iot:ConnectAttributes`, `iot:LastWillTopic`) are part of the context.
    pub fn connect(&mut self, client_id: &str) -> Decision {
        let resource = self.arns.client(client_id);
        evaluate(
            self.policies.iter().map(Arc::as_ref),
            Action::Connect,
            &resource,
            &self.context,
        )
    }

    /// `iot:Publish` on `topic/{topic}`, and `iot:RetainPublish` as well when `retain`.
    pub fn publish(&mut self, topic: &str, retain: bool) -> Decision {
        let resource = self.arns.topic(topic);
        let publish = self.decide(Action::Publish, resource.clone());
        if !retain || !publish.is_allowed() {
            return publish;
        }
        self.decide(Action::RetainPublish, resource)
    }

    /// `iot:Subscribe` on `topicfilter/{filter}`.
    pub fn subscribe(&mut self, filter: &str) -> Decision {
        let resource = self.arns.topic_filter(filter);
        self.decide(Action::Subscribe, resource)
    }

    /// `iot:Receive` on `topic/{topic}`.
    pub fn receive(&mut self, topic: &str) -> Decision {
        let resource = self.arns.topic(topic);
        self.decide(Action::Receive, resource)
    }

    /// A shadow REST action on `thing/{thing}[/{shadow}]` (`iot:ListNamedShadowsForThing` on `*`).
    pub fn shadow(&mut self, action: Action, thing: &str, shadow: Option<&str>) -> Decision {
        let resource = if action == Action::ListNamedShadowsForThing {
            "*".to_owned()
        } else {
            self.arns.thing(thing, shadow)
        };
        self.decide(action, resource)
    }

    /// `iot:GetRetainedMessage` on `topic/{topic}` (the REST `GetRetainedMessage`).
    pub fn get_retained_message(&mut self, topic: &str) -> Decision {
        let resource = self.arns.topic(topic);
        self.decide(Action::GetRetainedMessage, resource)
    }

    /// `iot:ListRetainedMessages` on `*` (the REST `ListRetainedMessages`).
    pub fn list_retained_messages(&mut self) -> Decision {
        self.decide(Action::ListRetainedMessages, "*".to_owned())
    }

    /// `greengrass:Discover` on `thing/{thing}`: may the caller learn the cores `thing` is
    /// associated with. Thing policy variables never resolve here (AWS: unsupported for
    /// Greengrass data-plane operations), so only names and wildcards match.
    pub fn greengrass_discover(&mut self, thing: &str) -> Decision {
        let resource = self.arns.thing(thing, None);
        self.decide(Action::GreengrassDiscover, resource)
    }

    /// `greengrass:GetConnectivityInfo` or `greengrass:UpdateConnectivityInfo` on the core's
    /// `arn:aws:greengrass:…:/greengrass/things/{core}/connectivityInfo`; any other action is
    /// decided on that resource as well.
    pub fn greengrass_connectivity_info(&mut self, action: Action, core: &str) -> Decision {
        let resource = self.arns.connectivity_info(core);
        self.decide(action, resource)
    }

    /// `greengrass:PutCertificateAuthorities` on the core's `thing/{core}`.
    pub fn greengrass_put_certificate_authorities(&mut self, core: &str) -> Decision {
        let resource = self.arns.thing(core, None);
        self.decide(Action::GreengrassPutCertificateAuthorities, resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:iot:us-east-1:123456789012:";

    fn guard(statements: &str) -> PolicyGuard {
        let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
            .replace("ARN:", ARN);
        let policy = Policy::parse("p", &doc).unwrap();
        PolicyGuard::new(
            vec![Arc::new(policy)],
            ResourceArns::new("us-east-1", "123456789012"),
            RequestContext::for_client("c"),
        )
    }

    #[test]
    fn get_retained_message_is_checked_on_the_topic_arn() {
        let mut g = guard(
            r#"{"Effect":"Allow","Action":"iot:GetRetainedMessage","Resource":"ARN:topic/cars/*"}"#,
        );
        assert!(g.get_retained_message("cars/1").is_allowed());
        assert!(!g.get_retained_message("bikes/1").is_allowed());
        // Neither implies the other, nor any topic action.
        assert!(!g.list_retained_messages().is_allowed());
        assert!(!g.receive("cars/1").is_allowed());
        assert!(!g.publish("cars/1", false).is_allowed());
    }

    #[test]
    fn list_retained_messages_is_checked_on_star() {
        let mut g =
            guard(r#"{"Effect":"Allow","Action":"iot:ListRetainedMessages","Resource":"*"}"#);
        assert!(g.list_retained_messages().is_allowed());
        assert!(!g.get_retained_message("a").is_allowed());
        // A topic resource does not cover the `*` resource.
        let mut g = guard(
            r#"{"Effect":"Allow","Action":"iot:ListRetainedMessages","Resource":"ARN:topic/*"}"#,
        );
        assert!(!g.list_retained_messages().is_allowed());
    }

    #[test]
    fn wildcard_actions_cover_the_retained_message_actions() {
        for action in ["iot:*", "*", "iot:*Retained*", "iot:Get*", "iot:List*"] {
            let mut g = guard(&format!(
                r#"{{"Effect":"Allow","Action":"{action}","Resource":"*"}}"#
            ));
            let get = g.get_retained_message("a/b").is_allowed();
            let list = g.list_retained_messages().is_allowed();
            match action {
                "iot:Get*" => assert!(get && !list, "{action}"),
                "iot:List*" => assert!(!get && list, "{action}"),
                _ => assert!(get && list, "{action}"),
            }
        }
    }

    #[test]
    fn an_explicit_deny_wins_over_iot_star() {
        let mut g = guard(
            r#"{"Effect":"Allow","Action":"iot:*","Resource":"*"},
               {"Effect":"Deny","Action":"iot:GetRetainedMessage","Resource":"ARN:topic/secret/*"},
               {"Effect":"Deny","Action":"iot:ListRetainedMessages","Resource":"*"}"#,
        );
        assert!(g.get_retained_message("public/x").is_allowed());
        assert_eq!(
            g.get_retained_message("secret/x"),
            Decision::ExplicitDeny {
                policy: "p".into(),
                statement: 1
            }
        );
        assert_eq!(
            g.list_retained_messages(),
            Decision::ExplicitDeny {
                policy: "p".into(),
                statement: 2
            }
        );
    }

    #[test]
    fn greengrass_discover_is_checked_on_the_callers_thing_arn() {
        let mut g = guard(
            r#"{"Effect":"Allow","Action":"greengrass:Discover","Resource":"ARN:thing/car-*"}"#,
        );
        assert!(g.greengrass_discover("car-1").is_allowed());
        assert!(!g.greengrass_discover("core-1").is_allowed());
        // Discover implies nothing else.
        assert!(
            !g.greengrass_put_certificate_authorities("car-1")
                .is_allowed()
        );
        assert!(
            !g.greengrass_connectivity_info(Action::GreengrassUpdateConnectivityInfo, "car-1")
                .is_allowed()
        );
        assert!(!g.shadow(Action::GetThingShadow, "car-1", None).is_allowed());
    }

    #[test]
    fn greengrass_wildcards_and_star_cover_the_greengrass_actions_but_iot_star_does_not() {
        for (action, covers) in [
            ("greengrass:*", true),
            ("*", true),
            ("GREENGRASS:discover", true),
            ("greengrass:*ConnectivityInfo", true),
            ("iot:*", false),
        ] {
            let mut g = guard(&format!(
                r#"{{"Effect":"Allow","Action":"{action}","Resource":"*"}}"#
            ));
            let discover = g.greengrass_discover("car-1").is_allowed();
            assert_eq!(
                discover,
                covers && action != "greengrass:*ConnectivityInfo",
                "{action}"
            );
            let update = g
                .greengrass_connectivity_info(Action::GreengrassUpdateConnectivityInfo, "core")
                .is_allowed();
            assert_eq!(
                update,
                covers && action != "GREENGRASS:discover",
                "{action}"
            );
        }
    }

    #[test]
    fn connectivity_info_uses_the_greengrass_arn() {
        let mut g = guard(
            r#"{"Effect":"Allow","Action":["greengrass:GetConnectivityInfo","greengrass:UpdateConnectivityInfo"],
                "Resource":"arn:aws:greengrass:us-east-1:123456789012:/greengrass/things/core-*/connectivityInfo"}"#,
        );
        for action in [
            Action::GreengrassGetConnectivityInfo,
            Action::GreengrassUpdateConnectivityInfo,
        ] {
            assert!(
                g.greengrass_connectivity_info(action, "core-1")
                    .is_allowed()
            );
            assert!(!g.greengrass_connectivity_info(action, "car-1").is_allowed());
        }
        // The iot thing ARN is another resource.
        let mut g = guard(
            r#"{"Effect":"Allow","Action":"greengrass:UpdateConnectivityInfo","Resource":"ARN:thing/core-1"}"#,
        );
        assert!(
            !g.greengrass_connectivity_info(Action::GreengrassUpdateConnectivityInfo, "core-1")
                .is_allowed()
        );
    }

    #[test]
    fn thing_variables_do_not_resolve_for_greengrass_discover() {
        // HTTPS callers have no client id, so `${iot:Connection.Thing.ThingName}` stays literal.
        let policy = Policy::parse(
            "p",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"greengrass:Discover",
                "Resource":"arn:aws:iot:us-east-1:123456789012:thing/${iot:Connection.Thing.ThingName}"}]}"#,
        )
        .unwrap();
        let mut g = PolicyGuard::new(
            vec![Arc::new(policy)],
            ResourceArns::new("us-east-1", "123456789012"),
            RequestContext::default(),
        );
        assert!(!g.greengrass_discover("car-1").is_allowed());
    }

    #[test]
    fn an_explicit_deny_wins_over_greengrass_star() {
        let mut g = guard(
            r#"{"Effect":"Allow","Action":"greengrass:*","Resource":"*"},
               {"Effect":"Deny","Action":"greengrass:Discover","Resource":"ARN:thing/car-9"}"#,
        );
        assert!(g.greengrass_discover("car-1").is_allowed());
        assert!(!g.greengrass_discover("car-9").is_allowed());
        assert!(
            g.greengrass_put_certificate_authorities("core")
                .is_allowed()
        );
    }
}
