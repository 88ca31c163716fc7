"""paho-mqtt (Eclipse) against the broker: connect over TLS or WebSocket, subscribe, publish at
QoS 1 (or --qos), wait for the message to come back (with --qos other than 1 the line ends with
its delivery QoS, `qos=N`). Prints one line the Rust test reads:
RECEIVED <payload> | CONNECT_FAILED <reason> | SUBSCRIBE_DENIED | DISCONNECTED <reason> | TIMEOUT."""

import argparse
import ssl
import sys
import threading

import paho.mqtt.client as mqtt


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["tcp", "websockets"], default="tcp")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--path", default="/mqtt", help="WebSocket path with its query")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--message", default="hello from paho")
    parser.add_argument("--qos", type=int, choices=[0, 1, 2], default=1)
    args = parser.parse_args()

    done = threading.Event()
    result = {"line": "TIMEOUT"}

    def finish(line: str) -> None:
        if not done.is_set():
            result["line"] = line
            done.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=args.client_id,
        transport=args.transport,
        protocol=mqtt.MQTTv311,
    )
    client.tls_set(ca_certs=args.cafile, certfile=args.cert, keyfile=args.key,
                   tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if args.transport == "websockets":
        client.ws_set_options(path=args.path)

    def on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            finish(f"CONNECT_FAILED {reason_code}")
            return
        c.subscribe(args.topic, qos=args.qos)

    def on_subscribe(c, userdata, mid, reason_codes, properties):
        if any(rc.is_failure for rc in reason_codes):
            finish("SUBSCRIBE_DENIED")
            return
        c.publish(args.topic, args.message, qos=args.qos)

    def on_message(c, userdata, message):
        text = message.payload.decode("utf-8", "replace")
        finish(f"RECEIVED {text}" if args.qos == 1 else f"RECEIVED {text} qos={message.qos}")

    def on_disconnect(c, userdata, flags, reason_code, properties):
        finish(f"DISCONNECTED {reason_code}")

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    try:
        client.connect(args.host, args.port, keepalive=30)
    except Exception as error:  # TLS or WebSocket handshake refused
        print(f"CONNECT_FAILED {type(error).__name__}: {error}")
        return 2
    client.loop_start()
    done.wait(10)
    client.disconnect()
    client.loop_stop()
    print(result["line"])
    return 0 if result["line"].startswith("RECEIVED") else 2


if __name__ == "__main__":
    sys.exit(main())
