//! The dashboard with the parts a person uses: its SigV4 presigner (run by Node, as the page runs
//! it in the browser) against the `aws-sigv4` crate, and the whole page in headless Chromium
//! (Debian's package) driven by playwright-core against the broker and three cars.
//!
//! They need Node, Chromium and playwright-core, so they are ignored in `cargo test`;
//! `.ci/browser` installs those and runs them. Screenshots land in
//! `{CARGO_TARGET_DIR or target}/screenshots/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use common::*;
use iot_examples::admin::AdminCommand;
use iot_examples::device::car::FleetCounters;
use iot_examples::device::car::fleet::{self, FleetOptions, FleetRoute, FleetTransport};
use tokio::sync::watch;

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn node(args: &[&str]) -> std::process::Output {
    Command::new("node")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}); run .ci/browser"))
}

/// The page's presigner and AWS's signer make the same URL for the same inputs and time.
#[test]
#[ignore = "needs node: run .ci/browser"]
fn the_javascript_presigner_signs_as_aws_does() {
    for token in [None, Some("FwoGZXIvYXdzEBYaDGV4YW1wbGUvdG9rZW4/+=")] {
        let (host, key, secret, now) = (
            "localhost:8443",
            "ASIAEXAMPLEEXAMPLE01",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            1_764_072_000u64,
        );
        let input = serde_json::json!({
            "host": host, "region": "eu-west-1", "accessKeyId": key, "secretAccessKey": secret,
            "sessionToken": token, "nowSecs": now, "expires": 300,
        });
        let out = node(&[
            browser_dir().join("presign.mjs").to_str().unwrap(),
            &input.to_string(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours = String::from_utf8(out.stdout).unwrap().trim().to_owned();

        let identity =
            Credentials::new(key, secret, token.map(str::to_owned), None, "browser").into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
        settings.session_token_mode = SessionTokenMode::Exclude;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("iotdevicegateway")
            .time(UNIX_EPOCH + Duration::from_secs(now))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let url = format!("wss://{host}/mqtt");
        let signable = SignableRequest::new(
            "GET",
            url.as_str(),
            [("host", host)].into_iter(),
            SignableBody::Bytes(b""),
        )
        .unwrap();
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .unwrap()
            .into_parts();
        let aws: Vec<String> = instructions
            .params()
            .iter()
            .map(|(n, v)| format!("{n}={}", iot_auth::sigv4::uri_encode(v, false)))
            .collect();
        let expected = format!("{url}?{}", aws.join("&"));
        assert_eq!(ours, expected, "token {token:?}");
    }
}

/// The whole dashboard in headless Chromium against the broker, three cars and an edge core with
/// the third car behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node, chromium and playwright-core: run .ci/browser"]
async fn the_dashboard_in_a_real_browser() {
    let scratch = Scratch::new("browser");
    let config = config(&scratch.0);
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();
    let password = "a browser test password";
    for command in [
        AdminCommand::CreateLoginProfile {
            user_name: "operator".into(),
            password: password.into(),
        },
        AdminCommand::CreatePolicy {
            policy_name: "dashboard".into(),
            policy_document: iot_examples::admin::dashboard_policy(&config.region, &config.account),
        },
        AdminCommand::AttachPolicy {
            policy_name: "dashboard".into(),
            target: "arn:aws:iam::123456789012:user/operator".into(),
        },
    ] {
        iot_examples::admin::run(&config, command).unwrap();
    }
    let manifest = fleet::provision(&config, 3).unwrap();
    // An edge core with the third car behind it (found by Greengrass discovery).
    let mut edge = iot_examples::config::edge::EdgeConfig::beside(&config);
    edge.cloud.mqtts_port = running.mqtts.port();
    edge.cloud.https_port = port;
    iot_examples::edge::provision::provision_core(&config, &edge).unwrap();
    iot_examples::edge::provision::associate_client_devices(
        &config,
        &edge.thing_name,
        &["car-0003".to_owned()],
    )
    .unwrap();
    let core = iot_examples::edge::server::start(&edge).await.unwrap();
    assert!(core.registered(Duration::from_secs(10)).await);
    let (stop, shutdown) = watch::channel(false);
    let fleet_task = tokio::spawn({
        let config = config.clone();
        let options = FleetOptions {
            first: 0,
            route: FleetRoute::Discovery { https_port: port },
            count: 3,
            host: "localhost".into(),
            port: running.mqtts.port(),
            transport: FleetTransport::Mtls,
            every: Duration::from_millis(500),
            telemetry_qos: mqtt_codec::QoS::AtMostOnce,
            persistent: false,
            ramp_up: Duration::from_millis(100),
            reconnect: iot_examples::device::ReconnectPolicy::default(),
        };
        async move {
            fleet::run(
                &config,
                &manifest,
                &options,
                Arc::new(FleetCounters::default()),
                shutdown,
            )
            .await
            .unwrap()
        }
    });

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let shots = target.join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let url = format!("https://localhost:{port}/dashboard/");
    let script = browser_dir().join("dashboard.mjs");
    let out = tokio::task::spawn_blocking(move || {
        node(&[
            script.to_str().unwrap(),
            &url,
            "operator",
            password,
            shots.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("step: log out") && text.trim_end().ends_with("ok"),
        "{text}"
    );
    stop.send(true).unwrap();
    fleet_task.await.unwrap();
    core.shutdown().await;
    running.shutdown().await;
}
