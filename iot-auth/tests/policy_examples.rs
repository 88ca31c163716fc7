//! Table tests built from the example policies in AWS's IoT policy documentation (connect,
//! publish/subscribe, receive, retained messages, shadows, thing and certificate variables,
//! conditions): for each policy, the requests AWS documents as allowed and as denied.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use iot_auth::policy::{
    Action, Decision, Policy, PolicyGuard, RequestContext, ResourceArns, ThingContext,
};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

fn policy(statements: &str) -> Arc<Policy> {
    let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
        .replace("ARN:", &format!("arn:aws:iot:{REGION}:{ACCOUNT}:"));
    Arc::new(Policy::parse("example", &doc).unwrap_or_else(|e| panic!("{e}\n{doc}")))
}

fn guard(policies: Vec<Arc<Policy>>, ctx: RequestContext) -> PolicyGuard {
    PolicyGuard::new(policies, ResourceArns::new(REGION, ACCOUNT), ctx)
}

fn attached_thing(client: &str) -> RequestContext {
    RequestContext {
        thing: Some(ThingContext {
            name: client.to_owned(),
            type_name: Some("car".to_owned()),
            attributes: BTreeMap::from([("fleet".to_owned(), "north".to_owned())]),
        }),
        ..RequestContext::for_client(client)
    }
}

/// (what, target, allowed)
type Table<'a> = &'a [(Action, &'a str, bool)];

fn check(policies: Vec<Arc<Policy>>, ctx: RequestContext, table: Table<'_>) {
    let mut g = guard(policies, ctx.clone());
    for &(action, target, allowed) in table {
        let decision = match action {
            Action::Connect => g.connect(target),
            Action::Publish => g.publish(target, false),
            Action::RetainPublish => g.publish(target, true),
            Action::Subscribe => g.subscribe(target),
            Action::Receive => g.receive(target),
            Action::GetRetainedMessage => g.get_retained_message(target),
            Action::ListRetainedMessages => g.list_retained_messages(),
            other => g.shadow(other, target, None),
        };
        assert_eq!(
            decision.is_allowed(),
            allowed,
            "{action} {target:?} for {:?}: {decision}",
            ctx.client_id
        );
    }
}

#[test]
fn connect_only_as_the_attached_thing() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"ARN:client/${iot:Connection.Thing.ThingName}"}"#,
    );
    check(
        vec![p.clone()],
        attached_thing("Thing1"),
        &[(Action::Connect, "Thing1", true)],
    );
    // The same client id without the thing attached: the variable does not resolve.
    check(
        vec![p.clone()],
        RequestContext::for_client("Thing1"),
        &[(Action::Connect, "Thing1", false)],
    );
    check(
        vec![p],
        attached_thing("Thing1"),
        &[(Action::Connect, "Thing2", false)],
    );
}

#[test]
fn connect_with_listed_client_ids_or_a_prefix() {
    let listed = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":["ARN:client/client1","ARN:client/client2","ARN:client/client3"]}"#,
    );
    let ctx = RequestContext::default();
    check(
        vec![listed],
        ctx.clone(),
        &[
            (Action::Connect, "client1", true),
            (Action::Connect, "client3", true),
            (Action::Connect, "client4", false),
            (Action::Connect, "Client1", false),
        ],
    );
    let prefix =
        policy(r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"ARN:client/client*"}"#);
    check(
        vec![prefix],
        ctx,
        &[
            (Action::Connect, "client1", true),
            (Action::Connect, "clientA", true),
            (Action::Connect, "client", true),
            (Action::Connect, "otherclient", false),
        ],
    );
}

#[test]
fn connect_denied_for_one_client_id_despite_a_wildcard_allow() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"ARN:client/*"},
                      {"Effect":"Deny","Action":"iot:Connect","Resource":"ARN:client/client1"}"#,
    );
    check(
        vec![p],
        RequestContext::default(),
        &[
            (Action::Connect, "client1", false),
            (Action::Connect, "client2", true),
        ],
    );
}

#[test]
fn publish_to_one_topic_or_a_prefix() {
    let exact = policy(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"ARN:topic/some_specific_topic"}"#,
    );
    check(
        vec![exact],
        RequestContext::for_client("c"),
        &[
            (Action::Publish, "some_specific_topic", true),
            (Action::Publish, "some_specific_topic/sub", false),
            (Action::Publish, "some_other_topic", false),
            (Action::Subscribe, "some_specific_topic", false),
        ],
    );
    let prefix =
        policy(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"ARN:topic/topic_prefix*"}"#);
    check(
        vec![prefix],
        RequestContext::for_client("c"),
        &[
            (Action::Publish, "topic_prefix", true),
            (Action::Publish, "topic_prefix123", true),
            (Action::Publish, "topic_prefix/abc/def", true),
            (Action::Publish, "other/topic_prefix", false),
        ],
    );
}

#[test]
fn subscribe_resources_treat_mqtt_wildcards_literally() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Subscribe","Resource":["ARN:topicfilter/topic/#","ARN:topicfilter/topic/+/abc"]}"#,
    );
    check(
        vec![p],
        RequestContext::for_client("c"),
        &[
            (Action::Subscribe, "topic/#", true),
            (Action::Subscribe, "topic/+/abc", true),
            (Action::Subscribe, "topic/x", false),
            (Action::Subscribe, "topic/x/abc", false),
            (Action::Subscribe, "topic/+", false),
        ],
    );
    let star = policy(
        r#"{"Effect":"Allow","Action":"iot:Subscribe","Resource":"ARN:topicfilter/topic_prefix/*"}"#,
    );
    check(
        vec![star],
        RequestContext::for_client("c"),
        &[
            (Action::Subscribe, "topic_prefix/#", true),
            (Action::Subscribe, "topic_prefix/+/abc", true),
            (Action::Subscribe, "topic_prefix/a", true),
            (Action::Subscribe, "topic_prefix", false),
            (Action::Subscribe, "#", false),
        ],
    );
}

#[test]
fn single_character_wildcard() {
    let p = policy(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"ARN:topic/sensor/?"}"#);
    check(
        vec![p],
        RequestContext::for_client("c"),
        &[
            (Action::Publish, "sensor/1", true),
            (Action::Publish, "sensor/a", true),
            (Action::Publish, "sensor/12", false),
            (Action::Publish, "sensor/", false),
        ],
    );
}

#[test]
fn receive_needs_its_own_permission() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Subscribe","Resource":"ARN:topicfilter/some_specific_topic"},
                      {"Effect":"Allow","Action":"iot:Receive","Resource":"ARN:topic/some_specific_topic"}"#,
    );
    check(
        vec![p],
        RequestContext::for_client("c"),
        &[
            (Action::Subscribe, "some_specific_topic", true),
            (Action::Receive, "some_specific_topic", true),
            (Action::Receive, "some_other_topic", false),
            (Action::Publish, "some_specific_topic", false),
        ],
    );
}

#[test]
fn retained_publish_needs_publish_and_retain_publish() {
    let both = policy(
        r#"{"Effect":"Allow","Action":["iot:Publish","iot:RetainPublish"],"Resource":"ARN:topic/device/sample"},
                         {"Effect":"Allow","Action":"iot:Publish","Resource":"ARN:topic/device/plain"}"#,
    );
    check(
        vec![both],
        RequestContext::for_client("c"),
        &[
            (Action::RetainPublish, "device/sample", true),
            (Action::Publish, "device/sample", true),
            (Action::Publish, "device/plain", true),
            (Action::RetainPublish, "device/plain", false),
        ],
    );
    let retain_only = policy(
        r#"{"Effect":"Allow","Action":"iot:RetainPublish","Resource":"ARN:topic/device/sample"}"#,
    );
    check(
        vec![retain_only],
        RequestContext::for_client("c"),
        &[(Action::RetainPublish, "device/sample", false)],
    );
}

#[test]
fn retained_messages_read_over_rest() {
    // AWS's "get and list retained messages" example: GetRetainedMessage on one topic ARN,
    // ListRetainedMessages on `*` (it takes no topic).
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:GetRetainedMessage","Resource":"ARN:topic/some_specific_topic"},
                      {"Effect":"Allow","Action":"iot:ListRetainedMessages","Resource":"*"}"#,
    );
    check(
        vec![p],
        RequestContext::default(),
        &[
            (Action::GetRetainedMessage, "some_specific_topic", true),
            (Action::GetRetainedMessage, "some_other_topic", false),
            (Action::ListRetainedMessages, "", true),
            // Reading retained messages grants nothing over MQTT.
            (Action::Receive, "some_specific_topic", false),
            (Action::Publish, "some_specific_topic", false),
        ],
    );
    // Publishing retained messages does not let one read them back over REST.
    let publisher = policy(
        r#"{"Effect":"Allow","Action":["iot:Publish","iot:RetainPublish","iot:Receive"],"Resource":"ARN:topic/*"}"#,
    );
    check(
        vec![publisher],
        RequestContext::for_client("c"),
        &[
            (Action::RetainPublish, "device/sample", true),
            (Action::GetRetainedMessage, "device/sample", false),
            (Action::ListRetainedMessages, "", false),
        ],
    );
}

#[test]
fn shadow_topics_of_the_connected_thing() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":["ARN:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/update","ARN:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/get"]},
                      {"Effect":"Allow","Action":"iot:Subscribe","Resource":"ARN:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"},
                      {"Effect":"Allow","Action":"iot:Receive","Resource":"ARN:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"}"#,
    );
    check(
        vec![p],
        attached_thing("car-1"),
        &[
            (Action::Publish, "$aws/things/car-1/shadow/update", true),
            (Action::Publish, "$aws/things/car-1/shadow/get", true),
            (Action::Publish, "$aws/things/car-1/shadow/delete", false),
            (Action::Publish, "$aws/things/car-2/shadow/update", false),
            (
                Action::Subscribe,
                "$aws/things/car-1/shadow/update/accepted",
                true,
            ),
            (Action::Subscribe, "$aws/things/car-1/shadow/#", true),
            (Action::Subscribe, "$aws/things/+/shadow/#", false),
            (
                Action::Receive,
                "$aws/things/car-1/shadow/update/delta",
                true,
            ),
            (
                Action::Receive,
                "$aws/things/car-2/shadow/update/delta",
                false,
            ),
        ],
    );
}

#[test]
fn shadow_rest_actions_on_thing_resources() {
    let p = policy(
        r#"{"Effect":"Allow","Action":["iot:GetThingShadow","iot:UpdateThingShadow"],"Resource":"ARN:thing/car-*"},
                      {"Effect":"Allow","Action":"iot:ListNamedShadowsForThing","Resource":"*"}"#,
    );
    let mut g = guard(vec![p], RequestContext::default());
    assert!(g.shadow(Action::GetThingShadow, "car-1", None).is_allowed());
    assert!(
        g.shadow(Action::UpdateThingShadow, "car-1", Some("gps"))
            .is_allowed()
    );
    assert!(
        !g.shadow(Action::DeleteThingShadow, "car-1", None)
            .is_allowed()
    );
    assert!(
        !g.shadow(Action::GetThingShadow, "bike-1", None)
            .is_allowed()
    );
    assert!(
        g.shadow(Action::ListNamedShadowsForThing, "bike-1", None)
            .is_allowed()
    );
}

#[test]
fn thing_attributes_and_type_in_resources() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"ARN:topic/fleet/${iot:Connection.Thing.Attributes[fleet]}/${iot:Connection.Thing.ThingTypeName}/*"}"#,
    );
    check(
        vec![p.clone()],
        attached_thing("car-1"),
        &[
            (Action::Publish, "fleet/north/car/speed", true),
            (Action::Publish, "fleet/south/car/speed", false),
        ],
    );
    // Without the attribute the variable stays literal and nothing matches.
    let mut ctx = attached_thing("car-1");
    ctx.thing.as_mut().unwrap().attributes.clear();
    check(
        vec![p],
        ctx,
        &[(Action::Publish, "fleet/north/car/speed", false)],
    );
}

#[test]
fn client_id_variable_and_the_deny_of_a_subtree() {
    let p = policy(
        r#"{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"ARN:topic/${iot:ClientId}/*"},
                      {"Effect":"Deny","Action":"iot:Publish","Resource":"ARN:topic/${iot:ClientId}/admin/*"}"#,
    );
    check(
        vec![p],
        RequestContext::for_client("dev42"),
        &[
            (Action::Publish, "dev42/telemetry", true),
            (Action::Publish, "dev42/admin/reset", false),
            (Action::Receive, "dev42/admin/reset", true),
            (Action::Publish, "dev43/telemetry", false),
        ],
    );
}

#[test]
fn literal_special_characters() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"ARN:topic/what${?}/star${*}/${$}{iot:ClientId}"}"#,
    );
    check(
        vec![p],
        RequestContext::for_client("c"),
        &[
            (Action::Publish, "what?/star*/${iot:ClientId}", true),
            (Action::Publish, "whatX/starY/c", false),
        ],
    );
}

#[test]
fn certificate_subject_variables() {
    let now = 1_790_000_000;
    let ca = iot_auth::provision::CertificateAuthority::generate("CA", now).unwrap();
    let mut request = iot_auth::provision::DeviceCertificateRequest::new("car-9", now);
    request.organization = Some("Acme".into());
    request.organizational_unit = Some("Fleet".into());
    request.dns_names = vec!["car-9.acme.test".into()];
    let issued = ca.issue_device(&request).unwrap();
    let cert =
        Arc::new(iot_auth::x509::CertificateInfo::from_der(&issued.certificate_der).unwrap());
    let ctx = RequestContext {
        certificate: Some(cert.clone()),
        ..RequestContext::for_client("car-9")
    };
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":[
        "ARN:topic/${iot:Certificate.Subject.Organization}/${iot:Certificate.Subject.CommonName}/*",
        "ARN:topic/ou/${iot:Certificate.Subject.OrganizationalUnit.0}",
        "ARN:topic/dns/${iot:Certificate.Subject.AlternativeName.DNSName}",
        "ARN:topic/serial/${iot:Certificate.SerialNumber}",
        "ARN:topic/issuer/${iot:Certificate.Issuer.CommonName}",
        "ARN:topic/second/${iot:Certificate.Subject.OrganizationalUnit.1}",
        "ARN:topic/list/${iot:Certificate.Subject.Organization.List}"]}"#,
    );
    let serial = format!("serial/{}", cert.serial_number());
    check(
        vec![p],
        ctx,
        &[
            (Action::Publish, "Acme/car-9/speed", true),
            (Action::Publish, "Acme/car-8/speed", false),
            (Action::Publish, "ou/Fleet", true),
            (Action::Publish, "dns/car-9.acme.test", true),
            (Action::Publish, &serial, true),
            (Action::Publish, "issuer/CA", true),
            // Index out of range and `.List` do not resolve in a resource.
            (Action::Publish, "second/Fleet", false),
            (Action::Publish, "list/Acme", false),
        ],
    );
}

#[test]
fn connect_attribute_and_last_will_conditions() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"ARN:client/*",
                       "Condition":{"ForAnyValue:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}},
                      {"Effect":"Deny","Action":"iot:Connect","Resource":"ARN:client/*",
                       "Condition":{"StringNotLike":{"iot:LastWillTopic":"will/${iot:ClientId}"}}}"#,
    );
    let with = |attrs: &[&str], will: Option<&str>| RequestContext {
        connect_attributes: attrs.iter().map(|s| s.to_string()).collect(),
        last_will_topic: will.map(str::to_owned),
        ..RequestContext::for_client("c1")
    };
    check(
        vec![p.clone()],
        with(&["PersistentConnect"], None),
        &[(Action::Connect, "c1", false)],
    );
    check(
        vec![p.clone()],
        with(&["PersistentConnect", "LastWill"], Some("will/c1")),
        &[(Action::Connect, "c1", true)],
    );
    check(
        vec![p.clone()],
        with(&["PersistentConnect", "LastWill"], Some("will/c2")),
        &[(Action::Connect, "c1", false)],
    );
    check(
        vec![p],
        with(&["LastWill"], Some("will/c1")),
        &[(Action::Connect, "c1", false)],
    );
}

#[test]
fn source_ip_condition() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"ARN:client/*",
                       "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1/128"]}}}"#,
    );
    let from = |ip: &str| RequestContext {
        source_ip: Some(ip.to_owned()),
        ..RequestContext::for_client("c")
    };
    check(
        vec![p.clone()],
        from("10.1.2.3"),
        &[(Action::Connect, "c", true)],
    );
    check(
        vec![p.clone()],
        from("::1"),
        &[(Action::Connect, "c", true)],
    );
    check(
        vec![p.clone()],
        from("192.168.1.1"),
        &[(Action::Connect, "c", false)],
    );
    check(
        vec![p],
        RequestContext::for_client("c"),
        &[(Action::Connect, "c", false)],
    );
}

#[test]
fn deny_in_one_policy_overrides_allow_in_another() {
    let allow = policy(r#"{"Effect":"Allow","Action":"iot:*","Resource":"*"}"#);
    let deny =
        policy(r#"{"Effect":"Deny","Action":"iot:Publish","Resource":"ARN:topic/secret/*"}"#);
    check(
        vec![allow.clone(), deny.clone()],
        RequestContext::for_client("c"),
        &[
            (Action::Publish, "secret/x", false),
            (Action::Publish, "public/x", true),
            (Action::Subscribe, "secret/#", true),
        ],
    );
    let decision = iot_auth::policy::evaluate(
        [allow.as_ref(), deny.as_ref()],
        Action::Publish,
        &ResourceArns::new(REGION, ACCOUNT).topic("secret/x"),
        &RequestContext::for_client("c"),
    );
    assert_eq!(
        decision,
        Decision::ExplicitDeny {
            policy: "example".into(),
            statement: 0
        }
    );
}

#[test]
fn action_wildcards_and_not_action() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"iot:*Shadow","Resource":"*"},
                      {"Effect":"Allow","NotAction":["iot:Publish","iot:Connect","iot:*Shadow*"],"Resource":"*"}"#,
    );
    let mut g = guard(vec![p], RequestContext::for_client("c"));
    assert!(g.shadow(Action::GetThingShadow, "t", None).is_allowed());
    assert!(
        !g.shadow(Action::ListNamedShadowsForThing, "t", None)
            .is_allowed()
    );
    assert!(g.subscribe("a").is_allowed());
    assert!(!g.publish("a", false).is_allowed());
    assert!(!g.connect("c").is_allowed());
}

#[test]
fn nothing_allowed_means_denied() {
    let mut g = guard(Vec::new(), RequestContext::for_client("c"));
    assert_eq!(g.connect("c"), Decision::ImplicitDeny);
    assert_eq!(g.publish("a", false), Decision::ImplicitDeny);
}
