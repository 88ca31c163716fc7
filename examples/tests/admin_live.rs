//! The CLI while the broker runs: commands travel over the admin socket and take effect at once,
//! as the AWS CLI's do against AWS. A certificate made while the broker runs connects right away;
//! revoking it refuses the next handshake; the commands' effects survive a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;

async fn connects(device: &Device, port: u16, client_id: &str) -> bool {
    let (_client, mut events) = rumqttc(device, client_id, port, true);
    wait_for(&mut events, |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))).then_some(())
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_reach_the_running_broker() {
    let scratch = Scratch::new("admin-live");
    let config = write_config(&scratch.0);
    let policy = scratch.0.join("policy.json");
    std::fs::write(&policy, CAR_POLICY).unwrap();
    let broker = BrokerProcess::start(&config);
    let port = broker.mqtts_port();

    // Provisioning while it runs, with a relative file:// path resolved by the CLI.
    broker_cli(&config, &["create-thing", "--thing-name", "car-7"]).unwrap();
    let created = broker_cli(&config, &["create-keys-and-certificate", "--set-as-active"]).unwrap();
    let device = device_of(&created);
    let arn = created["certificateArn"].as_str().unwrap();
    broker_cli(
        &config,
        &[
            "attach-thing-principal",
            "--thing-name",
            "car-7",
            "--principal",
            arn,
        ],
    )
    .unwrap();
    broker_cli(
        &config,
        &[
            "create-policy",
            "--policy-name",
            "cars",
            "--policy-document",
            "file://policy.json",
        ],
    )
    .unwrap();
    broker_cli(
        &config,
        &["attach-policy", "--policy-name", "cars", "--target", arn],
    )
    .unwrap();
    assert!(
        connects(&device, port, "car-7").await,
        "a new certificate connects at once"
    );

    // An error comes back as an error.
    let error = broker_cli(
        &config,
        &["attach-policy", "--policy-name", "nope", "--target", arn],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("nope"), "{error}");

    // Revoked while running: the next handshake is refused.
    broker_cli(
        &config,
        &[
            "update-certificate",
            "--certificate-id",
            arn,
            "--new-status",
            "REVOKED",
        ],
    )
    .unwrap();
    assert!(
        !connects(&device, port, "car-7b").await,
        "revoked still connects"
    );

    // Access keys made while running verify at once: listed, with the principal.
    let key = broker_cli(&config, &["create-access-key", "--user-name", "ops"]).unwrap();
    let listed = broker_cli(&config, &["list-access-keys"]).unwrap();
    assert_eq!(
        listed["AccessKeyMetadata"][0]["AccessKeyId"],
        key["AccessKey"]["AccessKeyId"]
    );

    // Everything was committed: after a crash and a restart the broker still knows it all.
    broker.kill_9();
    let things = broker_cli(&config, &["list-things"]).unwrap();
    assert_eq!(things["things"][0]["thingName"], "car-7");
    let certificates = broker_cli(&config, &["list-certificates"]).unwrap();
    assert_eq!(certificates["certificates"][0]["status"], "REVOKED");
    let listed = broker_cli(&config, &["list-access-keys"]).unwrap();
    assert_eq!(listed["AccessKeyMetadata"][0]["UserName"], "ops");
}
