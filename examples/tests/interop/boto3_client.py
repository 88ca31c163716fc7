"""boto3's `iot-data` client (AWS's own SDK for Python, unmodified) against the broker's HTTPS data
plane: typed exceptions for shadow errors, publish, and the retained-message API. Prints one JSON
object: what each call returned or which exception class caught it, for the Rust test to check."""

import argparse
import json
import sys

import boto3
import botocore.config
import botocore.exceptions


def outcome(call):
    """Runs `call`; returns {"ok": result} or what the SDK made of the error."""
    try:
        return {"ok": call()}
    except botocore.exceptions.ClientError as error:
        return {
            "error": error.response["Error"]["Code"],
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": error.response["Error"].get("Message", ""),
            "exception": type(error).__name__,
        }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True, help="https://localhost:PORT")
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--secret-access-key", required=True)
    parser.add_argument("--thing", required=True)
    parser.add_argument("--topic-prefix", required=True)
    args = parser.parse_args()

    client = boto3.client(
        "iot-data",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id=args.access_key_id,
        aws_secret_access_key=args.secret_access_key,
        verify=args.cafile,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    exceptions = client.exceptions
    seen = {}

    def shadow(payload):
        return json.loads(payload["payload"].read())

    # A typed exception class catches each shadow error.
    try:
        client.get_thing_shadow(thingName=args.thing)
        seen["get_missing"] = "no error"
    except exceptions.ResourceNotFoundException as error:
        seen["get_missing"] = {
            "caught": "ResourceNotFoundException",
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": error.response["Error"]["Message"],
        }

    seen["update"] = outcome(
        lambda: shadow(
            client.update_thing_shadow(
                thingName=args.thing,
                payload=json.dumps({"state": {"reported": {"speed": 42}}}),
            )
        )["version"]
    )

    try:
        client.update_thing_shadow(
            thingName=args.thing,
            payload=json.dumps({"state": {"desired": {"speed": 0}}, "version": 7}),
        )
        seen["conflict"] = "no error"
    except exceptions.ConflictException as error:
        seen["conflict"] = {
            "caught": "ConflictException",
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": error.response["Error"]["Message"],
        }

    try:
        client.update_thing_shadow(thingName=args.thing, payload=b"{not json")
        seen["invalid"] = "no error"
    except exceptions.InvalidRequestException as error:
        seen["invalid"] = {
            "caught": "InvalidRequestException",
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": error.response["Error"]["Message"],
        }

    seen["get"] = outcome(lambda: shadow(client.get_thing_shadow(thingName=args.thing))["state"])

    # Retained messages: published over HTTPS, read back through both calls.
    topics = [f"{args.topic_prefix}/{n}" for n in ("a", "b", "c")]
    for n, topic in enumerate(topics):
        client.publish(topic=topic, qos=1, retain=True, payload=f"retained {n}".encode())
    got = client.get_retained_message(topic=topics[1])
    seen["get_retained"] = {
        "topic": got["topic"],
        "payload": got["payload"].decode(),
        "qos": got["qos"],
        "lastModifiedTime": got["lastModifiedTime"],
    }

    pages = []
    token = None
    while True:
        kwargs = {"maxResults": 2}
        if token:
            kwargs["nextToken"] = token
        page = client.list_retained_messages(**kwargs)
        pages.append(
            [
                {k: m[k] for k in ("topic", "payloadSize", "qos", "lastModifiedTime")}
                for m in page.get("retainedTopics", [])
            ]
        )
        token = page.get("nextToken")
        if not token:
            break
    seen["list_pages"] = pages
    paginated = client.get_paginator("list_retained_messages").paginate(
        PaginationConfig={"PageSize": 1}
    )
    seen["paginator_topics"] = [m["topic"] for page in paginated for m in page["retainedTopics"]]

    try:
        client.get_retained_message(topic=f"{args.topic_prefix}/none")
        seen["retained_missing"] = "no error"
    except exceptions.ResourceNotFoundException as error:
        seen["retained_missing"] = {
            "caught": "ResourceNotFoundException",
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
        }

    # An empty retained publish deletes it.
    client.publish(topic=topics[0], qos=1, retain=True, payload=b"")
    seen["after_delete"] = [
        m["topic"] for m in client.list_retained_messages(maxResults=200)["retainedTopics"]
    ]

    # The policy allows reading retained messages under the prefix only.
    seen["retained_forbidden"] = outcome(lambda: client.get_retained_message(topic="private/x"))

    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
