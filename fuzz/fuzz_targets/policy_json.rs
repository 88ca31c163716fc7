//! Arbitrary text as a policy document: parsing never panics, and a document that parses is
//! evaluated for every action against topics and a context taken from the input; the cached guard
//! agrees with direct evaluation, and adding a deny-everything policy always denies.
#![no_main]

use std::sync::Arc;

use iot_auth::policy::{Action, Policy, PolicyGuard, RequestContext, ResourceArns, evaluate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(policy) = Policy::parse("fuzz", &text) else {
        return;
    };
    let arns = ResourceArns::new("us-east-1", "123456789012");
    let client = text.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect::<String>();
    let ctx = RequestContext {
        source_ip: Some("10.1.2.3".into()),
        connect_attributes: vec!["PersistentConnect".into()],
        ..RequestContext::for_client(&client)
    };
    let deny_all = Policy::parse(
        "deny",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#,
    )
    .expect("a valid policy");
    let mut guard = PolicyGuard::new(vec![Arc::new(policy.clone())], arns.clone(), ctx.clone());
    for topic in [client.as_str(), "a/b", "$aws/things/t/shadow/update", "", "#"] {
        for action in Action::ALL {
            let resource = arns.topic(topic);
            let direct = evaluate([&policy], action, &resource, &ctx);
            assert_eq!(guard.decide(action, resource.clone()), direct);
            assert!(!evaluate([&policy, &deny_all], action, &resource, &ctx).is_allowed());
        }
        let _ = guard.subscribe(topic);
        let _ = guard.connect(topic);
    }
});
