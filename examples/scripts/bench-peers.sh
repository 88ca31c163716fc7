#!/usr/bin/env bash
# Runs the load generator (`cargo run --release --example bench`) with the same scenarios against
# our broker, Mosquitto (Debian package) and rumqttd 0.20.0, one broker after the other on
# run-time-chosen loopback ports, and writes BENCHMARKS.md (ratios ours/theirs, where we are behind)
# with SVG charts in docs/bench/ and every raw result in docs/bench/results.json.
#
#     examples/scripts/bench-peers.sh            # the full run (about half an hour on 2 cores)
#     examples/scripts/bench-peers.sh --quick    # short runs, small counts: a smoke check
#
# Installs what is missing: mosquitto with apt-get, rumqttd with cargo install (into
# ~/.cache/aws-iot-rs/tools). Each broker is restarted for every scenario (fresh memory, and a
# crash costs one row, not the run). Plain TCP, no authentication, QoS 1 state in memory; limits
# raised so nothing is rate-limited; every broker and the bench get the hard open-file limit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
quick=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done
command_line="examples/scripts/bench-peers.sh $*"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aws-iot-rs/target}"
tools="$HOME/.cache/aws-iot-rs/tools"
rumqttd="$tools/bin/rumqttd"
ulimit -n "$(ulimit -Hn)"
log() { printf '[bench-peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# rumqttd 0.20.0 compiles for minutes: start it first, in the background. Its lock file pins a
# `metrics` release that newer compilers refuse, so a failed --locked install is retried unlocked.
rumqttd_install=""
if [ ! -x "$rumqttd" ]; then
    log "installing rumqttd 0.20.0 in the background"
    ( cargo install rumqttd --version 0.20.0 --locked --root "$tools" \
        || cargo install rumqttd --version 0.20.0 --root "$tools" ) >"/tmp/bench-peers-rumqttd.log" 2>&1 &
    rumqttd_install=$!
fi
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    log "installing mosquitto"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
fi
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
log "building our broker and the bench (release)"
cargo build --release -q -p iot-examples --example broker --example bench
bin="$CARGO_TARGET_DIR/release/examples"
if [ -n "$rumqttd_install" ]; then
    log "waiting for the rumqttd install"
    wait "$rumqttd_install" || { log "rumqttd failed to install: see /tmp/bench-peers-rumqttd.log"; }
fi

work="$(mktemp -d)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
mkdir -p "$results"
broker_pid=""
stop_broker() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
        broker_pid=""
    fi
}
trap 'stop_broker; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Our broker's data directory, made once: the TLS identity for the TLS rows comes from it.
ours_data="$work/ours-data"
ours_config() { # port tls_port
    cat <<TOML
data_dir = "$ours_data"
[listeners]
mqtts_port = $2
alpn_port = 0
plain_mqtt = "127.0.0.1:$1"
metrics = "127.0.0.1:0"
[limits]
max_publishes_per_second = 0
max_subscriptions_per_connection = 0
max_inflight = 100
max_queued = 1000
TOML
}
ours_config 0 0 >"$work/ours-init.toml"
"$bin/broker" --config "$work/ours-init.toml" create-policy --policy-name bench \
    --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}' >/dev/null
"$bin/broker" --config "$work/ours-init.toml" create-keys-and-certificate --set-as-active \
    --out-dir "$work/tls" >"$work/cert.json"
cert_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["certificateId"])' "$work/cert.json")"
"$bin/broker" --config "$work/ours-init.toml" attach-policy --policy-name bench --target "$cert_id" >/dev/null
tls_ca="$ours_data/ca/ca.pem"
tls_cert="$work/tls/$cert_id.cert.pem"
tls_key="$work/tls/$cert_id.private.key"

# start_broker NAME TLS(0|1): sets port, broker_pid; TLS also sets tls_port.
start_broker() {
    port="$(free_port)"
    tls_port="$(free_port)"
    case "$1" in
        ours)
            ours_config "$port" "$tls_port" >"$work/ours.toml"
            "$bin/broker" --config "$work/ours.toml" >"$work/ours.out" 2>"$work/ours.err" &
            broker_pid=$!
            ;;
        mosquitto)
            {
                echo "user root"
                echo "persistence false"
                echo "log_dest none"
                echo "max_inflight_messages 100"
                echo "max_queued_messages 1000"
                echo "set_tcp_nodelay true"
                echo "listener $port 127.0.0.1"
                echo "allow_anonymous true"
                if [ "$2" = 1 ]; then
                    echo "listener $tls_port 127.0.0.1"
                    echo "allow_anonymous true"
                    echo "cafile $tls_ca"
                    echo "certfile $ours_data/server/server.pem"
                    echo "keyfile $ours_data/server/server.key"
                    echo "require_certificate true"
                fi
            } >"$work/mosquitto.conf"
            "$mosquitto_bin" -c "$work/mosquitto.conf" >"$work/mosquitto.out" 2>&1 &
            broker_pid=$!
            ;;
        rumqttd)
            cat >"$work/rumqttd.toml" <<TOML
id = 0
[router]
id = 0
max_connections = 30000
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "127.0.0.1:$port"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 131072
    max_inflight_count = 100
    dynamic_filters = true
TOML
            "$rumqttd" --config "$work/rumqttd.toml" >"$work/rumqttd.out" 2>&1 &
            broker_pid=$!
            ;;
    esac
    wait_port "$port" || return 1
    # The listen backlog each broker chose (a connect burst overflows a short one).
    echo "$1 $(ss -ltnH "sport = :$port" 2>/dev/null | awk '{print $3}' | head -1)" >>"$work/backlogs.txt"
}

# name | brokers | bench arguments (full) | bench arguments (quick)
scenarios=(
"pairs-qos1|ours mosquitto rumqttd|--scenario pairs --clients 8 --qos 1 --payload 64 --inflight 64|--duration 3 --warmup 1"
"pairs-qos0|ours mosquitto rumqttd|--scenario pairs --clients 8 --qos 0 --payload 64|--duration 3 --warmup 1"
"pairs-qos1-16k|ours mosquitto rumqttd|--scenario pairs --clients 8 --qos 1 --payload 16384 --inflight 16|--duration 3 --warmup 1"
"pairs-qos1-rate|ours mosquitto rumqttd|--scenario pairs --clients 8 --qos 1 --payload 256 --rate 10000 --inflight 256|--duration 3 --warmup 1"
"fanout-qos1|ours mosquitto rumqttd|--scenario fanout --clients 100 --qos 1 --payload 64 --inflight 64|--duration 3 --warmup 1"
"fanout-qos0|ours mosquitto rumqttd|--scenario fanout --clients 100 --qos 0 --payload 64|--duration 3 --warmup 1"
"fanin-qos1|ours mosquitto rumqttd|--scenario fanin --clients 100 --qos 1 --payload 64 --inflight 16|--duration 3 --warmup 1"
"idle|ours mosquitto rumqttd|--scenario idle --clients 19000 --duration 10|--clients 1000 --duration 2"
"connect-burst|ours mosquitto rumqttd|--scenario connect-burst --clients 5000|--clients 500"
"shadow|ours|--scenario shadow --clients 16 --things 10000 --thing-rate 15 --payload 1024 --inflight 256|--things 500 --duration 3 --warmup 1"
"tls-pairs-qos1|ours mosquitto|--scenario pairs --clients 8 --qos 1 --payload 64 --inflight 64 --tls|--duration 3 --warmup 1"
)
full_timing="--duration 20 --warmup 3"

for entry in "${scenarios[@]}"; do
    IFS='|' read -r name brokers full_args quick_args <<<"$entry"
    for broker in $brokers; do
        if [ "$broker" = rumqttd ] && [ ! -x "$rumqttd" ]; then
            log "skip $name on rumqttd: not installed"
            continue
        fi
        tls=0
        case "$full_args" in *--tls*) tls=1 ;; esac
        start_broker "$broker" "$tls" || { log "$broker did not start"; stop_broker; continue; }
        args="$full_timing $full_args"
        [ "$quick" = 1 ] && args="$args $quick_args"
        target="--port $port"
        if [ "$tls" = 1 ]; then
            target="--port $tls_port --host localhost --ca $tls_ca --cert $tls_cert --key $tls_key"
        fi
        log "$name on $broker: bench $args"
        # shellcheck disable=SC2086
        "$bin/bench" $args $target --broker-pid "$broker_pid" --label "$broker" --quiet \
            --json "$results/$name.$broker.json" >"$results/$name.$broker.txt" 2>&1 \
            || log "$name on $broker: the bench exited with $?"
        cat "$results/$name.$broker.txt" >&2
        if [ "$broker" = ours ]; then
            # Our broker's own counters (drops by cause), to tell its policy from a lost message.
            python3 - "$work/ours.out" "$results/$name.ours.metrics" <<'PY' || true
import json, sys, urllib.request
ready = next(l for l in open(sys.argv[1]) if l.startswith("READY "))
address = json.loads(ready[6:])["metrics"]
text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
counters = {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
            if l.startswith(("aws_iot_dropped", "aws_iot_messages")) and len(l.split()) == 2}
json.dump(counters, open(sys.argv[2], "w"), indent=1, sort_keys=True)
PY
        fi
        if ! kill -0 "$broker_pid" 2>/dev/null; then
            log "$name on $broker: THE BROKER DIED"
            echo "{\"label\":\"$broker\",\"scenario\":\"$name\",\"broker_died\":true}" >"$results/$name.$broker.died.json"
        fi
        stop_broker
    done
done

versions="$work/versions.txt"
{
    echo "ours: iot-examples $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo '+dirty')"
    echo "mosquitto: $(dpkg-query -W -f '${Version}' mosquitto 2>/dev/null || "$mosquitto_bin" -h | head -1)"
    echo "rumqttd: $("$rumqttd" --version 2>/dev/null || echo 'not installed')"
    echo "bench: release build of examples/examples/bench.rs"
    echo "rustc: $(rustc --version)"
    echo "load average (1, 5, 15 min) before the runs: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    sort -u "$work/backlogs.txt" 2>/dev/null | awk '{printf "listen backlog of %s: %s\n", $1, $2}'
} >"$versions"
python3 examples/scripts/bench_report.py --results "$results" --versions "$versions" \
    --command "$command_line" --quick "$quick" --out "$root"
log "wrote BENCHMARKS.md and docs/bench/"
