#!/usr/bin/env bash
# Measures the edge core with N cars behind it (default 1000), all release builds on loopback:
#  1. steady state for STEADY seconds (default 40): every car sends QoS 1 telemetry once a second
#     to the core, which relays it to the cloud through its spool; the core's memory and CPU;
#  2. the cloud is killed for OUTAGE seconds (default 20): the cars go on, the spool fills
#     (its write rate is what the cars offer, every message committed before its PUBACK);
#  3. the cloud comes back: how long the spool takes to drain, and the drain rate.
# The per-connection publish limits of the cloud and of the core's link are lifted (AWS's 100/s
# per connection would cap one core at 100 cars at one message a second).
#     bash examples/scripts/measure-edge.sh [N] [STEADY] [OUTAGE]
# Environment: INTERVAL_MS (each car's telemetry interval, default 1000; a car sends at most 90
# messages a second, AWS's per-connection limit less a margin), MAX_INFLIGHT (the core's
# unacknowledged messages in the cloud, default 5 as Greengrass's nucleus).
set -euo pipefail
cd "$(dirname "$0")/../.."
count="${1:-1000}"
steady="${2:-40}"
outage="${3:-20}"
interval="${INTERVAL_MS:-1000}"
inflight="${MAX_INFLIGHT:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aws-iot-rs/target}"
cargo build --release -p iot-examples --example broker --example cars --example edge-core
bin="$CARGO_TARGET_DIR/release/examples"
work="$(mktemp -d)"
broker=""; core=""; cars=""
trap 'kill $broker $core $cars 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mqtts=$(port); alpn=$(port); metrics=$(port); local=$(port)
cat > "$work/broker.toml" <<TOML
data_dir = "$work/cloud"
[listeners]
mqtts_port = $mqtts
alpn_port = $alpn
metrics = "127.0.0.1:$metrics"
[limits]
max_publishes_per_second = 0
TOML
cat > "$work/edge.toml" <<TOML
data_dir = "$work/edge"
[cloud]
mqtts_port = $mqtts
https_port = $alpn
ca = "$work/cloud/ca/ca.pem"
certificate = "$work/edge/core/core.cert.pem"
private_key = "$work/edge/core/core.private.key"
max_publishes_per_second = 0
max_inflight = $inflight
[local]
mqtts_port = $local
client_device_ca = "$work/cloud/ca/ca.pem"
[spool]
max_bytes = 26214400
TOML
start_broker() {
    "$bin/broker" --config "$work/broker.toml" > "$work/broker.out" 2>/dev/null &
    broker=$!
    until grep -q READY "$work/broker.out" 2>/dev/null; do sleep 0.2; done
}
# Provision the cars and the core with the cloud stopped, then start everything.
"$bin/cars" --config "$work/broker.toml" --count "$count" --duration-secs 0 --report-secs 0 >/dev/null
"$bin/edge-core" --config "$work/edge.toml" --provision-only --cloud-config "$work/broker.toml"
start_broker
RUST_LOG=info "$bin/edge-core" --config "$work/edge.toml" --status-secs 1 > "$work/core.out" 2> "$work/core.log" &
core=$!
until grep -q READY "$work/core.out" 2>/dev/null; do sleep 0.2; done
"$bin/cars" --config "$work/broker.toml" --count "$count" --host localhost --port "$local" \
    --core-ca "$work/edge/ca/ca.pem" --duration-secs $((steady + outage + 120)) --interval-ms "$interval" \
    --report-secs 10 --ramp-up-ms 10000 > "$work/cars.out" &
cars=$!
usage() { ps -o rss=,time= -p "$core" | awk '{printf "rss %.1f MiB, cpu time %s", $1/1024, $2}'; }
spooled() { grep -o 'spooled=[0-9]*' "$work/core.log" | tail -1 | cut -d= -f2; }
to_cloud() { grep -o 'to_cloud=[0-9]*' "$work/core.log" | tail -1 | cut -d= -f2; }
sleep "$steady"
t0=$(to_cloud); c0=$(ps -o time= -p "$core")
sleep 10
t1=$(to_cloud); c1=$(ps -o time= -p "$core")
echo "steady: $count cars every $interval ms, window $inflight; core $(usage); relayed to the cloud $(( (t1 - t0) / 10 )) msg/s; spool $(spooled)"
echo "        core cpu time $c0 -> $c1 over 10 s"
tail -n 1 "$work/cars.out"
kill -9 "$broker"; wait "$broker" 2>/dev/null || true
sleep "$outage"
queued=$(spooled)
echo "outage: cloud killed for $outage s; spool holds $queued messages (written at $((queued / outage)) msg/s, each committed before its PUBACK); core $(usage)"
start_broker
start=$(date +%s.%N)
while true; do
    sleep 0.5
    now=$(spooled)
    if [ "${now:-0}" -le "$((count / 10))" ]; then break; fi
    if (( $(echo "$(date +%s.%N) - $start > 300" | bc) )); then echo "drain: not done after 300 s"; break; fi
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "drain: $queued spooled messages drained in ${elapsed}s while new messages kept arriving:"
echo "       $(echo "$queued / $elapsed" | bc) msg/s net; core $(usage)"
tail -n 1 "$work/cars.out"
