#!/usr/bin/env bash
# Measures what one `cars` process costs per car: N cars (default 1000) against a release broker
# on loopback, for DURATION seconds (default 60), printing the fleet's periodic reports (CPU and
# resident memory of the cars process, in total and per car) and the broker's own usage.
#     bash examples/scripts/measure-fleet.sh [N] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/../.."
count="${1:-1000}"
duration="${2:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aws-iot-rs/target}"
cargo build --release -p iot-examples --example broker --example cars
bin="$CARGO_TARGET_DIR/release/examples"
work="$(mktemp -d)"
trap 'kill "$broker" 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mqtts=$(port); alpn=$(port); metrics=$(port)
cat > "$work/broker.toml" <<TOML
data_dir = "$work/data"
[listeners]
mqtts_port = $mqtts
alpn_port = $alpn
metrics = "127.0.0.1:$metrics"
TOML
# Provision with the broker stopped (one commit), then start it.
"$bin/cars" --config "$work/broker.toml" --count "$count" --duration-secs 0 --report-secs 0 >/dev/null
"$bin/broker" --config "$work/broker.toml" > "$work/broker.out" 2>/dev/null &
broker=$!
until grep -q READY "$work/broker.out" 2>/dev/null; do sleep 0.2; done
"$bin/cars" --config "$work/broker.toml" --count "$count" --duration-secs "$duration" \
    --report-secs 15 --ramp-up-ms 10000 &
cars=$!
sleep $((duration - 5))
echo "broker: $(ps -o rss=,time= -p "$broker" | awk '{printf "rss %.1f MiB, cpu time %s", $1/1024, $2}')"
curl -s "http://127.0.0.1:$metrics/metrics" | grep -E '^aws_iot_(connections|messages_received_total|messages_sent_total) '
wait "$cars"
