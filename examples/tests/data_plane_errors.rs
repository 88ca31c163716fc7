//! What an AWS SDK sees of each data-plane error, through the real broker: the status, the
//! `x-amzn-ErrorType` that names the exception (boto3 raises `ResourceNotFoundException`,
//! `ConflictException`, … from it), `x-amzn-RequestId`, and a JSON body with a `message`. Policy
//! refusals are counted in the metrics by action.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["iot:GetThingShadow","iot:UpdateThingShadow","iot:DeleteThingShadow"],
   "Resource":"arn:aws:iot:us-east-1:123456789012:thing/car-*"},
  {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/cars/*"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_names_its_aws_exception() {
    let scratch = Scratch::new("data-plane-errors");
    let config = config(&scratch.0);
    let devices = provision(&config, 1);
    attach_new_policy(&config, "rest", POLICY, &devices[0].id);
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();
    let ca = devices[0].ca_pem.clone();
    let call = |device: Option<&Device>, line: &str, body: &[u8]| {
        let (ca, line, body, device) =
            (ca.clone(), line.to_owned(), body.to_vec(), device.cloned());
        async move { https_reply(port, device.as_ref(), &ca, &[], &line, &[], &body).await }
    };
    let car = Some(&devices[0]);
    let expect = |reply: &HttpsReply, status: u16, error_type: &str| {
        assert_eq!(reply.status, status, "{reply:?}");
        assert_eq!(
            reply.header("x-amzn-errortype"),
            Some(error_type),
            "{reply:?}"
        );
        assert!(reply.header("x-amzn-requestid").is_some(), "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(reply.body["message"].is_string(), "{reply:?}");
    };

    let reply = call(car, "GET /things/car-1/shadow HTTP/1.1", b"").await;
    expect(&reply, 404, "ResourceNotFoundException");
    assert_eq!(reply.body["message"], "No shadow exists with name: 'car-1'");

    let update = br#"{"state":{"reported":{"speed":1}}}"#;
    let reply = call(car, "POST /things/car-1/shadow HTTP/1.1", update).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-amzn-errortype"), None);

    let stale = br#"{"state":{"reported":{"speed":2}},"version":9}"#;
    let reply = call(car, "POST /things/car-1/shadow HTTP/1.1", stale).await;
    expect(&reply, 409, "ConflictException");
    assert_eq!(reply.body["message"], "Version conflict");

    let reply = call(car, "POST /things/car-1/shadow HTTP/1.1", b"{not json").await;
    expect(&reply, 400, "InvalidRequestException");
    assert_eq!(reply.body["message"], "Invalid JSON");

    let big = format!(
        r#"{{"state":{{"reported":{{"blob":"{}"}}}}}}"#,
        "x".repeat(9000)
    );
    let reply = call(car, "POST /things/car-1/shadow HTTP/1.1", big.as_bytes()).await;
    expect(&reply, 413, "RequestEntityTooLargeException");

    let reply = call(car, "POST /things/car-1/shadow HTTP/1.1", b"\xff\xfe{}").await;
    assert!(
        matches!(reply.status, 400 | 415),
        "not UTF-8 is refused: {reply:?}"
    );

    let reply = call(car, "PUT /things/car-1/shadow HTTP/1.1", b"").await;
    expect(&reply, 405, "MethodNotAllowedException");
    let reply = call(car, "GET /topics/cars/1 HTTP/1.1", b"").await;
    expect(&reply, 405, "MethodNotAllowedException");

    let reply = call(None, "GET /things/car-1/shadow HTTP/1.1", b"").await;
    expect(&reply, 401, "UnauthorizedException");

    let reply = call(car, "GET /things/truck-1/shadow HTTP/1.1", b"").await;
    expect(&reply, 403, "ForbiddenException");
    let reply = call(car, "POST /topics/cars/forbidden HTTP/1.1", b"x").await;
    expect(&reply, 403, "ForbiddenException");

    let reply = call(car, "GET /no/such/resource HTTP/1.1", b"").await;
    expect(&reply, 404, "ResourceNotFoundException");

    let reply = call(car, "POST /topics/cars/%2B HTTP/1.1", b"x").await;
    expect(&reply, 400, "InvalidRequestException");

    let text = metrics(running.metrics.unwrap()).await;
    for line in [
        "aws_iot_https_authorization_refused_total{action=\"iot:GetThingShadow\"} 1",
        "aws_iot_https_authorization_refused_total{action=\"iot:Publish\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    running.shutdown().await;
}
