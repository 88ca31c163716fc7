//! The dashboard's server side through the broker: the page is served from the binary; a user
//! made with `create-login-profile` (while the broker runs) signs in and gets temporary
//! credentials; they sign a WebSocket URL (token appended after signing, as the page does) that
//! the broker accepts for MQTT within the user's policy; without the token, or with a wrong
//! password, it refuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use iot_examples::admin::AdminCommand;
use rumqttc::{Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::json;

const DASHBOARD_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/dashboard-*"},
  {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/cars/*"},
  {"Effect":"Allow","Action":["iot:Receive","iot:Publish"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/cars/*"}]}"#;

async fn login(port: u16, ca: &str, user: &str, password: &str) -> HttpsReply {
    let body = json!({"username": user, "password": password}).to_string();
    https_reply(
        port,
        None,
        ca,
        &[],
        "POST /dashboard/login HTTP/1.1",
        &[("content-type".into(), "application/json".into())],
        body.as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_user_signs_in_and_speaks_mqtt_with_temporary_credentials() {
    let scratch = Scratch::new("dashboard-login");
    let config = config(&scratch.0);
    let ca = provision(&config, 1).remove(0).ca_pem;
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();

    // Made while the broker runs: through its admin socket, in effect at once.
    let answer = iot_examples::admin::run(
        &config,
        AdminCommand::CreateLoginProfile {
            user_name: "alice".into(),
            password: "correct horse battery".into(),
        },
    )
    .unwrap();
    let principal = answer["principal"].as_str().unwrap().to_owned();
    assert_eq!(principal, "arn:aws:iam::123456789012:user/alice");
    iot_examples::admin::run(
        &config,
        AdminCommand::CreatePolicy {
            policy_name: "dashboard".into(),
            policy_document: DASHBOARD_POLICY.into(),
        },
    )
    .unwrap();
    iot_examples::admin::run(
        &config,
        AdminCommand::AttachPolicy {
            policy_name: "dashboard".into(),
            target: principal,
        },
    )
    .unwrap();

    // The page, from the binary.
    let page = https_reply(port, None, &ca, &[], "GET / HTTP/1.1", &[], b"").await;
    assert_eq!(page.status, 302);
    assert_eq!(page.header("location"), Some("/dashboard/"));
    for (path, kind) in [
        ("/dashboard/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/sigv4.js", "text/javascript"),
        ("/dashboard/mqtt.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ] {
        let reply = https_reply(
            port,
            None,
            &ca,
            &[],
            &format!("GET {path} HTTP/1.1"),
            &[],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
    }

    // Wrong password, unknown user: the same refusal.
    for (user, password) in [
        ("alice", "wrong password"),
        ("mallory", "correct horse battery"),
    ] {
        let refused = login(port, &ca, user, password).await;
        assert_eq!(refused.status, 401, "{refused:?}");
        assert_eq!(
            refused.header("x-amzn-errortype"),
            Some("UnauthorizedException")
        );
        assert_eq!(refused.body["message"], "Incorrect username or password");
    }

    let reply = login(port, &ca, "alice", "correct horse battery").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let credentials = &reply.body["Credentials"];
    let key = credentials["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = credentials["SecretKey"].as_str().unwrap().to_owned();
    let token = credentials["SessionToken"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ASIA"));
    let expiration = credentials["Expiration"].as_i64().unwrap();
    assert!((expiration - now() - 3600).abs() <= 5, "{expiration}");
    assert_eq!(reply.body["Region"], "us-east-1");

    // MQTT over WebSocket with them, as the page does (our presigner, token after signing).
    let presigned = |token: Option<&str>| {
        iot_auth::sigv4::presign(&iot_auth::sigv4::Presign {
            method: "GET",
            host: &format!("localhost:{port}"),
            path: "/mqtt",
            region: "us-east-1",
            service: "iotdevicegateway",
            access_key_id: &key,
            secret_access_key: &secret,
            session_token: token,
            now_secs: now() as u64,
            expires_secs: Some(300),
        })
    };
    let connect = |path: String, client_id: &str| {
        let mut options =
            MqttOptions::new(client_id, format!("wss://localhost:{port}{path}"), port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_transport(Transport::wss_with_config(TlsConfiguration::Rustls(
            Arc::new(client_tls(None, &ca, &[])),
        )));
        rumqttc::AsyncClient::new(options, 10)
    };
    let (client, mut events) = connect(presigned(Some(&token)), "dashboard-alice-1");
    wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap();
    client
        .subscribe("cars/+/telemetry", QoS::AtMostOnce)
        .await
        .unwrap();
    let granted = wait_for(&mut events, |e| match e {
        Event::Incoming(Packet::SubAck(ack)) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(
        granted,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::AtMostOnce)]
    );

    // The same URL without the session token: refused.
    let (_client, mut events) = connect(presigned(None), "dashboard-alice-2");
    let error = wait_for(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("403"), "{error}");

    let text = metrics(running.metrics.unwrap()).await;
    assert!(
        text.contains("aws_iot_sigv4_refusals_total{reason=\"security_token\"} 1"),
        "{text}"
    );
    running.shutdown().await;
}
