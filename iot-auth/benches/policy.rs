//! Policy decisions per second for a realistic device policy set (connect as the attached thing,
//! telemetry topics by client id, shadow topics by thing name, a deny subtree, a second fleet-wide
//! policy with a condition), evaluated directly and through a connection's decision cache.
//!
//! Run: `cargo bench -p iot-auth --bench policy`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput};
use iot_auth::policy::{Policy, PolicyGuard, RequestContext, ResourceArns, ThingContext};

const DEVICE: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
 {"Effect":"Allow","Action":"iot:Publish","Resource":[
   "arn:aws:iot:eu-west-1:123456789012:topic/cars/${iot:ClientId}/telemetry/*",
   "arn:aws:iot:eu-west-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
 {"Effect":"Allow","Action":"iot:Subscribe","Resource":[
   "arn:aws:iot:eu-west-1:123456789012:topicfilter/cars/${iot:ClientId}/commands/*",
   "arn:aws:iot:eu-west-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
 {"Effect":"Allow","Action":"iot:Receive","Resource":[
   "arn:aws:iot:eu-west-1:123456789012:topic/cars/${iot:ClientId}/commands/*",
   "arn:aws:iot:eu-west-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
 {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:eu-west-1:123456789012:topic/cars/${iot:ClientId}/telemetry/debug/*"}]}"#;

const FLEET: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:eu-west-1:123456789012:topic/fleet/${iot:Connection.Thing.Attributes[fleet]}/*",
  "Condition":{"StringEquals":{"iot:Connection.Thing.ThingTypeName":"car"}}},
 {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:eu-west-1:123456789012:topicfilter/fleet/*"}]}"#;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let policies = vec![
        Arc::new(Policy::parse("device", DEVICE).unwrap()),
        Arc::new(Policy::parse("fleet", FLEET).unwrap()),
    ];
    let ctx = RequestContext {
        thing: Some(ThingContext {
            name: "car-0042".into(),
            type_name: Some("car".into()),
            attributes: BTreeMap::from([("fleet".into(), "north".into())]),
        }),
        source_ip: Some("10.0.0.7".into()),
        ..RequestContext::for_client("car-0042")
    };
    let arns = ResourceArns::new("eu-west-1", "123456789012");
    // A mix a car sends all day: telemetry on 8 topics, shadow updates, fleet chatter, deliveries.
    let topics: Vec<String> = (0..8)
        .map(|i| format!("cars/car-0042/telemetry/sensor{i}"))
        .chain([
            "$aws/things/car-0042/shadow/update".into(),
            "fleet/north/status".into(),
        ])
        .collect();

    let mut group = c.benchmark_group("policy decisions");
    group.throughput(Throughput::Elements(topics.len() as u64 * 2));
    for (label, capacity) in [("cached", 1024), ("uncached", 0)] {
        let mut guard =
            PolicyGuard::with_cache_capacity(policies.clone(), arns.clone(), ctx.clone(), capacity);
        group.bench_function(format!("publish + receive, {label}"), |b| {
            b.iter(|| {
                for topic in &topics {
                    black_box(guard.publish(black_box(topic), false));
                    black_box(guard.receive(black_box(topic)));
                }
            })
        });
    }
    group.finish();
    c.benchmark_group("policy parse")
        .throughput(Throughput::Elements(1))
        .bench_function("compile the device policy", |b| {
            b.iter(|| Policy::parse("device", black_box(DEVICE)).unwrap())
        });
    c.final_summary();
}
