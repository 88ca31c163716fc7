//! Properties of policy evaluation (deny overrides, order independence, the cache agrees with
//! direct evaluation, an independent wildcard oracle) and the errors of malformed documents.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use iot_auth::policy::{
    Action, Decision, Policy, PolicyError, PolicyGuard, RequestContext, ResourceArns, evaluate,
};
use proptest::prelude::*;

const PREFIX: &str = "arn:aws:iot:us-east-1:123456789012:topic/";

/// Simple recursive wildcard matcher, written independently of the crate's.
fn oracle(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| oracle(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && oracle(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && oracle(rest, &text[1..]),
    }
}

fn statement_strategy() -> impl Strategy<Value = (bool, String)> {
    (any::<bool>(), "[ab/*?+#]{0,6}")
}

fn document(statements: &[(bool, String)]) -> String {
    let list: Vec<String> = statements
        .iter()
        .map(|(allow, res)| {
            format!(
                r#"{{"Effect":"{}","Action":"iot:Publish","Resource":"{PREFIX}{res}"}}"#,
                if *allow { "Allow" } else { "Deny" }
            )
        })
        .collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        list.join(",")
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn explicit_deny_overrides_and_matches_the_oracle(
        policies in prop::collection::vec(prop::collection::vec(statement_strategy(), 1..4), 1..4),
        topic in "[ab/+#]{0,6}",
    ) {
        let compiled: Vec<Policy> = policies
            .iter()
            .enumerate()
            .map(|(i, p)| Policy::parse(&format!("p{i}"), &document(p)).unwrap())
            .collect();
        let resource = format!("{PREFIX}{topic}");
        let target: Vec<char> = resource.chars().collect();
        let hits = |want_allow: bool| policies.iter().flatten().any(|(allow, res)| {
            *allow == want_allow
                && oracle(&format!("{PREFIX}{res}").chars().collect::<Vec<_>>(), &target)
        });
        let ctx = RequestContext::for_client("c");
        let decision = evaluate(compiled.iter(), Action::Publish, &resource, &ctx);
        let expected_denied = hits(false);
        prop_assert_eq!(matches!(decision, Decision::ExplicitDeny { .. }), expected_denied);
        prop_assert_eq!(decision.is_allowed(), !expected_denied && hits(true));

        // Order does not matter.
        let reversed = evaluate(compiled.iter().rev(), Action::Publish, &resource, &ctx);
        prop_assert_eq!(reversed.is_allowed(), decision.is_allowed());

        // Adding a policy that denies everything denies, whatever the others allow.
        let deny_all = Policy::parse("deny", r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#).unwrap();
        let with_deny = evaluate(compiled.iter().chain([&deny_all]), Action::Publish, &resource, &ctx);
        prop_assert!(!with_deny.is_allowed());

        // The cached guard agrees, asked twice.
        let mut guard = PolicyGuard::new(
            compiled.iter().cloned().map(Arc::new).collect(),
            ResourceArns::new("us-east-1", "123456789012"),
            ctx.clone(),
        );
        prop_assert_eq!(guard.publish(&topic, false), decision.clone());
        prop_assert_eq!(guard.publish(&topic, false), decision);
    }

    #[test]
    fn parsing_never_panics(text in ".{0,200}") {
        let _ = Policy::parse("p", &text);
    }
}

#[test]
fn malformed_documents_are_refused_with_the_offending_field() {
    let cases: &[(&str, &str)] = &[
        ("not json", "not valid JSON"),
        ("[]", "document must be a JSON object"),
        (r#"{"Statement":[]}"#, "Version is missing"),
        (
            r#"{"Version":"2013-01-01","Statement":[]}"#,
            "Version must be",
        ),
        (r#"{"Version":"2012-10-17"}"#, "Statement is missing"),
        (
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            "Statement must not be empty",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Action":"iot:*","Resource":"*"}]}"#,
            "Statement[0].Effect is missing",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            "Statement[0].Action is missing",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*"}]}"#,
            "Statement[0].Resource is missing",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"Publish","Resource":"*"}]}"#,
            "not of the form service:action",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#,
            "non-empty list",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[1],"Resource":"*"}]}"#,
            "only strings",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*","Actions":"x"}]}"#,
            "Statement[0].Actions is not a statement field",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","NotAction":"iot:Connect","Resource":"*"}]}"#,
            "both Action and NotAction",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"StringSorta":{"iot:ClientId":"a"}}}]}"#,
            "Statement[0].Condition.StringSorta is not a condition operator",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"StringEquals":{"iot:ClientId":{"a":1}}}}]}"#,
            "Statement[0].Condition.StringEquals.iot:ClientId must be",
        ),
    ];
    for (doc, expected) in cases {
        let error = Policy::parse("p", doc).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "{doc}: got {error:?}, want {expected:?}"
        );
    }
}

#[test]
fn the_length_limit_ignores_whitespace() {
    let resource = format!("{PREFIX}{}", "a".repeat(1900));
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Publish","Resource":"{resource}"}}]}}"#
    );
    assert!(Policy::parse("p", &doc).is_ok());
    let spaced = doc.replace(',', " ,\n   ");
    assert!(Policy::parse("p", &spaced).is_ok());
    let long = doc.replace("iot:Publish", &format!("iot:Publish{}", "x".repeat(200)));
    assert!(matches!(
        Policy::parse("p", &long),
        Err(PolicyError::TooLong { .. })
    ));
}
