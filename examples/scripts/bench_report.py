#!/usr/bin/env python3
"""Turns the bench JSON results of examples/scripts/bench-peers.sh into BENCHMARKS.md, SVG bar
charts in docs/bench/ and docs/bench/results.json. Python standard library only."""
import argparse
import datetime
import glob
import html
import json
import os
import platform
import subprocess

BROKERS = ["ours", "mosquitto", "rumqttd"]
PEERS = ["mosquitto", "rumqttd"]

# scenario -> (headline metric key, label, higher is better)
HEADLINES = {
    "pairs-qos1": ("delivered", "delivered msg/s", True),
    "pairs-qos0": ("delivered", "delivered msg/s", True),
    "pairs-qos1-16k": ("delivered", "delivered msg/s", True),
    "pairs-qos1-rate": ("p99", "p99 latency (µs)", False),
    "fanout-qos1": ("delivered", "delivered msg/s", True),
    "fanout-qos0": ("delivered", "delivered msg/s", True),
    "fanin-qos1": ("delivered", "delivered msg/s", True),
    "idle": ("bytes_per_conn", "broker bytes per idle connection", False),
    "connect-burst": ("connects", "connects/s", True),
    "shadow": ("shadow", "accepted shadow updates/s", True),
    "tls-pairs-qos1": ("delivered", "delivered msg/s", True),
}
ORDER = list(HEADLINES)


def metrics(report):
    """The numbers of one bench report, flat."""
    m = report.get("messages") or {}
    lat = report.get("latency") or {}
    broker = report.get("broker") or {}
    idle = report.get("idle") or {}
    burst = report.get("burst") or {}
    shadow = report.get("shadow") or {}
    conns = report.get("connections") or {}
    return {
        "delivered": m.get("delivered_per_sec"),
        "sent": m.get("sent_per_sec"),
        "lost": m.get("lost"),
        "duplicated": m.get("duplicated"),
        "reordered": m.get("reordered"),
        "unacked": m.get("unacked_at_end"),
        "p50": lat.get("p50_us") if lat.get("count") else None,
        "p99": lat.get("p99_us") if lat.get("count") else None,
        "p999": lat.get("p999_us") if lat.get("count") else None,
        "max": lat.get("max_us") if lat.get("count") else None,
        "rss_peak_mib": broker["rss_peak_bytes"] / 1048576 if broker.get("rss_peak_bytes") else None,
        "cpu": broker.get("cpu_percent"),
        "bytes_per_conn": idle.get("bytes_per_connection") if idle.get("connected") else None,
        "held": idle.get("held"),
        "idle_connected": idle.get("connected"),
        "connects": burst.get("connects_per_sec") if burst else None,
        "burst_connected": burst.get("connected"),
        "shadow": shadow.get("accepted_per_sec") if shadow else None,
        "shadow_rejected": shadow.get("rejected"),
        "shadow_unanswered": shadow.get("unanswered"),
        "connected": conns.get("connected"),
        "attempted": conns.get("attempted"),
        "errors": conns.get("errors") or {},
        "qos": (report.get("settings") or {}).get("qos"),
    }


def ratio(ours, theirs):
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def fmt(value, digits=0):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def fmt_ratio(value):
    return "—" if value is None else f"{value:.2f}×"


def svg_bars(title, unit, values, path):
    """A horizontal bar chart: one bar per broker."""
    width, bar_h, gap, left, top = 560, 26, 10, 110, 40
    items = [(b, v) for b, v in values if v is not None]
    height = top + len(BROKERS) * (bar_h + gap) + 20
    top_value = max([v for _, v in items] + [1e-9])
    colours = {"ours": "#2f6fdf", "mosquitto": "#8a8a8a", "rumqttd": "#c77d1a"}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, broker in enumerate(BROKERS):
        y = top + i * (bar_h + gap)
        value = dict(values).get(broker)
        parts.append(f'<text x="10" y="{y + bar_h * 0.7:.0f}">{broker}</text>')
        if value is None:
            parts.append(f'<text x="{left}" y="{y + bar_h * 0.7:.0f}" fill="#999">not run / failed</text>')
            continue
        w = max(1.0, (width - left - 110) * value / top_value)
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colours[broker]}"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + bar_h * 0.7:.0f}">{fmt(value, 0)} {html.escape(unit)}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def svg_advantage(rows, path):
    """Overview: for each scenario's headline and each peer, how many times better ours is
    (ours/theirs for rates, theirs/ours for latency and memory), on a log scale around 1."""
    import math
    width, row_h, left, top = 780, 22, 330, 46
    height = top + len(rows) * row_h + 30
    mid = left + (width - left - 20) / 2
    span = (width - left - 20) / 2
    colours = {"mosquitto": "#8a8a8a", "rumqttd": "#c77d1a"}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="20" font-size="15" font-weight="bold">How many times better ours is (log scale; left of the line: behind)</text>',
        f'<text x="{mid - 4:.0f}" y="38" text-anchor="end">behind</text><text x="{mid + 4:.0f}" y="38">ahead</text>',
        f'<line x1="{mid:.0f}" y1="{top - 4}" x2="{mid:.0f}" y2="{height - 24}" stroke="black"/>',
    ]
    for i, (label, peer, value) in enumerate(rows):
        y = top + i * row_h
        parts.append(f'<text x="10" y="{y + 15}">{html.escape(label)} vs {peer}</text>')
        if value is None or value <= 0:
            parts.append(f'<text x="{mid + 6:.0f}" y="{y + 15}" fill="#999">—</text>')
            continue
        x = max(-1.0, min(1.0, math.log10(value) / 2)) * span  # ±100× fills the half
        x0, w = (mid, x) if x >= 0 else (mid + x, -x)
        parts.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 6}" fill="{colours[peer]}"/>')
        tx = mid + x + 4 if x >= 0 else mid + x - 4
        anchor = "start" if x >= 0 else "end"
        parts.append(f'<text x="{tx:.1f}" y="{y + 15}" text-anchor="{anchor}">{value:.2f}×</text>')
    parts.append(f'<text x="10" y="{height - 8}" fill="#555">bars past ±100× are clipped</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1048576:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "memory": mem,
        "fd_hard_limit": subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip(),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", help="folder of {scenario}.{broker}.json files from the bench")
    parser.add_argument("--from-json", help="regenerate from a docs/bench/results.json written before")
    parser.add_argument("--versions")
    parser.add_argument("--command", default="")
    parser.add_argument("--quick", default="0")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    runs = {}  # scenario -> broker -> report
    died = set()
    versions = []
    metrics_of = {}  # scenario -> broker -> the broker's own counters (ours only)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        runs = saved["runs"]
        died = {tuple(d) for d in saved.get("died", [])}
        versions = saved.get("versions", [])
        metrics_of = saved.get("broker_counters", {})
        args.command = saved.get("command", args.command)
        args.quick = "1" if saved.get("quick") else "0"
    for path in sorted(glob.glob(os.path.join(args.results, "*.metrics"))) if args.results else []:
        scenario, broker, _ = os.path.basename(path).rsplit(".", 2)
        with open(path) as f:
            try:
                counters = json.load(f)
            except json.JSONDecodeError:
                continue
        metrics_of.setdefault(scenario, {})[broker] = counters
    for path in sorted(glob.glob(os.path.join(args.results, "*.json"))) if args.results else []:
        name = os.path.basename(path)[: -len(".json")]
        with open(path) as f:
            try:
                report = json.load(f)
            except json.JSONDecodeError:
                continue
        if name.endswith(".died"):
            scenario, broker, _ = name.rsplit(".", 2)
            died.add((scenario, broker))
            continue
        scenario, broker = name.rsplit(".", 1)
        runs.setdefault(scenario, {})[broker] = report
    if args.versions:
        with open(args.versions) as f:
            versions = f.read().strip().splitlines()

    docs = os.path.join(args.out, "docs", "bench")
    os.makedirs(docs, exist_ok=True)
    for old in glob.glob(os.path.join(docs, "*.svg")):
        os.remove(old)
    with open(os.path.join(docs, "results.json"), "w") as f:
        json.dump({"command": args.command, "quick": args.quick == "1", "versions": versions,
                   "died": sorted(died), "broker_counters": metrics_of, "runs": runs}, f, indent=1, sort_keys=True)
        f.write("\n")

    m = {s: {b: metrics(r) for b, r in brokers.items()} for s, brokers in runs.items()}
    behind, goals = [], []

    def get(scenario, broker, key):
        return (m.get(scenario, {}).get(broker) or {}).get(key)

    # The goals.
    def goal(text, measured, ok):
        goals.append((text, measured, "yes" if ok else ("**no**" if ok is not None else "not measured")))

    for peer, factor in [("rumqttd", 3), ("mosquitto", 10)]:
        r = ratio(get("pairs-qos1", "ours", "delivered"), get("pairs-qos1", peer, "delivered"))
        goal(f"QoS 1, 8 pairs: ≥ {factor}× {peer}", fmt_ratio(r), None if r is None else r >= factor)
    for scenario in ["fanout-qos1", "fanout-qos0"]:
        r = ratio(get(scenario, "ours", "delivered"), get(scenario, "rumqttd", "delivered"))
        goal(f"fan-out 1→100 ({scenario}): ≥ 1.5× rumqttd", fmt_ratio(r), None if r is None else r >= 1.5)
    for scenario in ["pairs-qos0", "fanout-qos0"]:
        rss = get(scenario, "ours", "rss_peak_mib")
        goal(f"open-loop QoS 0 ({scenario}): broker RSS < 256 MiB", f"{fmt(rss, 1)} MiB", None if rss is None else rss < 256)
    ours_rate, mosq_rate = get("connect-burst", "ours", "connects"), get("connect-burst", "mosquitto", "connects")
    r = ratio(ours_rate, mosq_rate)
    goal("connect burst: ≥ Mosquitto's rate", fmt_ratio(r), None if r is None else r >= 1)
    per_conn = get("idle", "ours", "bytes_per_conn")
    goal("idle: ≤ 4 KiB per connection", f"{fmt(per_conn, 0)} B", None if per_conn is None else per_conn <= 4096)
    held = get("idle", "ours", "held")
    requested = ((runs.get("idle", {}).get("ours") or {}).get("idle") or {}).get("requested")
    goal(f"idle: {fmt(requested)} connections held", fmt(held), None if held is None else held >= (requested or 19000))
    for peer in PEERS:
        o, t = get("pairs-qos1-rate", "ours", "p99"), get("pairs-qos1-rate", peer, "p99")
        goal(f"fixed-rate p99 no worse than {peer}", f"{fmt(o)} vs {fmt(t)} µs", None if o is None or t is None else o <= t)
    sh = get("shadow", "ours", "shadow")
    goal("persistent shadow updates ≥ 50k/s", f"{fmt(sh, 0)}/s", None if sh is None else sh >= 50000)
    bad = []
    for scenario, brokers in m.items():
        x = brokers.get("ours")
        if x and x["qos"] == 1 and any((x.get(k) or 0) > 0 for k in ("lost", "duplicated", "reordered")):
            bad.append(scenario)
    goal("zero lost/duplicated/reordered acknowledged messages (ours, QoS 1)", ", ".join(bad) or "none", not bad)

    for text, measured, ok in goals:
        if ok != "yes":
            behind.append(f"Goal not met: {text} (measured {measured}).")

    # Scenario tables.
    sections = []
    for scenario in ORDER + sorted(set(runs) - set(ORDER)):
        if scenario not in runs:
            continue
        key, label, higher = HEADLINES.get(scenario, ("delivered", "delivered msg/s", True))
        reports = runs[scenario]
        any_report = next(iter(reports.values()))
        settings = any_report.get("settings", {})
        chart = f"docs/bench/{scenario}.svg"
        svg_bars(f"{scenario}: {label}" + ("" if higher else " (lower is better)"),
                 "", [(b, get(scenario, b, key)) for b in BROKERS], os.path.join(args.out, chart))
        lines = [f"### {scenario}", ""]
        lines.append(
            f"`{any_report.get('scenario')}`: {settings.get('clients')} clients, QoS {settings.get('qos')}, "
            f"{settings.get('payload_bytes')} B payload, "
            + (f"fixed {fmt(settings.get('rate'), 0)} msg/s" if settings.get("rate") else "open loop")
            + f", window {settings.get('inflight')}, {settings.get('duration_secs')} s measured after "
            f"{settings.get('warmup_secs')} s warm-up" + (", TLS" if settings.get("tls") else "") + "."
        )
        lines.append("")
        if scenario == "idle":
            lines.append("| broker | connected | held after the hold | broker RSS per connection | RSS peak MiB | ours/this (bytes per conn.) |")
            lines.append("|---|---|---|---|---|---|")
            for b in BROKERS:
                if b not in reports:
                    continue
                x = m[scenario][b]
                lines.append(f"| {b} | {fmt(x['idle_connected'])} | {fmt(x['held'])} | {fmt(x['bytes_per_conn'], 0)} B | "
                             f"{fmt(x['rss_peak_mib'], 1)} | {fmt_ratio(ratio(get(scenario, 'ours', key), x[key]))} |")
        elif scenario == "connect-burst":
            lines.append("| broker | connected | connects/s | p50 µs | p99 µs | max µs | broker CPU % | ours/this (rate) |")
            lines.append("|---|---|---|---|---|---|---|---|")
            for b in BROKERS:
                if b not in reports:
                    continue
                x = m[scenario][b]
                lines.append(f"| {b} | {fmt(x['burst_connected'])} | {fmt(x['connects'], 0)} | {fmt(x['p50'])} | {fmt(x['p99'])} | "
                             f"{fmt(x['max'])} | {fmt(x['cpu'], 0)} | {fmt_ratio(ratio(get(scenario, 'ours', key), x[key]))} |")
        elif scenario == "shadow":
            thing_rate = settings.get("thing_rate") or 15
            cap = (settings.get("things") or 0) * thing_rate
            lines.append(f"Things: {fmt(settings.get('things'))}, each updated at most {fmt(thing_rate, 0)} times a second "
                         f"(AWS throttles above 20), so the load generator offers at most {fmt(cap)} updates/s; "
                         "each update is a QoS 1 PUBLISH of about the payload size, answered on `/update/accepted` "
                         "after the durable commit.")
            lines.append("")
            lines.append("| broker | accepted/s | rejected | unanswered | p50 µs | p99 µs | RSS peak MiB | CPU % |")
            lines.append("|---|---|---|---|---|---|---|---|")
            for b in BROKERS:
                if b not in reports:
                    continue
                x = m[scenario][b]
                lines.append(f"| {b} | {fmt(x['shadow'], 0)} | {x['shadow_rejected'] or 0} | {fmt(x['shadow_unanswered'])} | "
                             f"{fmt(x['p50'])} | {fmt(x['p99'])} | {fmt(x['rss_peak_mib'], 1)} | {fmt(x['cpu'], 0)} |")
        else:
            lines.append("| broker | delivered msg/s | sent msg/s | p50 µs | p99 µs | p99.9 µs | max µs | lost / dup / reord | RSS peak MiB | CPU % | ours/this |")
            lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for b in BROKERS:
                if b not in reports:
                    continue
                x = m[scenario][b]
                lines.append(
                    f"| {b} | {fmt(x['delivered'], 0)} | {fmt(x['sent'], 0)} | {fmt(x['p50'])} | {fmt(x['p99'])} | {fmt(x['p999'])} | "
                    f"{fmt(x['max'])} | {fmt(x['lost'])} / {fmt(x['duplicated'])} / {fmt(x['reordered'])} | "
                    f"{fmt(x['rss_peak_mib'], 1)} | {fmt(x['cpu'], 0)} | {fmt_ratio(ratio(get(scenario, 'ours', key), x[key]))} |")
        for b in BROKERS:
            if (scenario, b) in died:
                lines.append("")
                lines.append(f"**{b} died during this run.**")
            x = m.get(scenario, {}).get(b)
            if x and x["errors"]:
                lines.append("")
                lines.append(f"{b}: {x['connected']} of {x['attempted']} connected; errors {x['errors']}.")
        counters = metrics_of.get(scenario, {}).get("ours")
        if counters:
            drops = {k[len("aws_iot_dropped_"):-len("_total")]: int(v) for k, v in counters.items()
                     if k.startswith("aws_iot_dropped_") and v}
            lines.append("")
            lines.append("Our broker's own counters after the run: " + (
                ", ".join(f"dropped ({k.replace('_', ' ')}) {v:,}" for k, v in sorted(drops.items()))
                if drops else "nothing dropped") + f"; messages in {int(counters.get('aws_iot_messages_received_total', 0)):,}, "
                f"out {int(counters.get('aws_iot_messages_sent_total', 0)):,}.")
        lines += ["", f"![{scenario}]({chart})", ""]
        ratio_word = "ours/this" if higher else "ours/this (lower is better, so above 1 is behind)"
        for peer in PEERS:
            r = ratio(get(scenario, "ours", key), get(scenario, peer, key))
            if r is not None and ((higher and r < 1) or (not higher and r > 1)):
                behind.append(f"{scenario}: {label} {fmt_ratio(r)} {peer} ({ratio_word}).")
        sections.append("\n".join(lines))

    advantage = []
    for scenario in ORDER:
        if scenario not in runs:
            continue
        key, label, higher = HEADLINES[scenario]
        for peer in PEERS:
            r = ratio(get(scenario, "ours", key), get(scenario, peer, key))
            if peer in runs[scenario]:
                advantage.append((f"{scenario} ({label})", peer, None if r is None or r == 0 else (r if higher else 1 / r)))
    svg_advantage(advantage, os.path.join(docs, "overview.svg"))

    mach = machine()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# Benchmarks", ""]
    out.append(
        f"Generated {now} by `{args.command}`" + (" (**quick smoke run**: short and small, not for conclusions)" if args.quick == "1" else " (full run)")
        + ". Every broker ran on this machine on a loopback port, restarted for each scenario, with the load generator "
        "(`cargo run --release --example bench`) on the same cores. Ratios are ours / theirs: above 1 is better for "
        "rates, below 1 is better for latency and memory. Raw results: [docs/bench/results.json](docs/bench/results.json)."
    )
    out += ["", "## Machine", ""]
    out.append(f"- {mach['nproc']} CPUs: {mach['cpu']}")
    out.append(f"- kernel {mach['kernel']}, memory {mach['memory']}, open-file hard limit {mach['fd_hard_limit']}")
    out += ["", "## Versions", ""] + [f"- {v}" for v in versions]
    out += ["", "## Settings", "",
            "- Plain TCP on 127.0.0.1 (TLS rows only against ours and Mosquitto), no authentication, clean sessions, QoS 1 state in memory.",
            "- Ours: `[listeners] plain_mqtt`, `[limits] max_publishes_per_second = 0`, `max_subscriptions_per_connection = 0`, "
            "`max_inflight = 100`, `max_queued = 1000`; data directory in a temporary folder (shadows are durable: redb).",
            "- Mosquitto: `persistence false`, `max_inflight_messages 100`, `max_queued_messages 1000`, `set_tcp_nodelay true`.",
            "- rumqttd: `max_inflight_count = 100`, `max_payload_size = 131072`, `next_connection_delay_ms = 0`, "
            "`max_connections = 30000`, default segment sizes.",
            "- Everyone (brokers and the bench) runs with the soft open-file limit raised to the hard one.",
            "- Latency is from the send time stamped in the payload to arrival (the same clock); at a fixed rate from the "
            "scheduled send time, so a publisher held back counts the wait.",
            ]
    out += ["", "## What makes the comparison uneven", "",
            "- The load generator runs on the same 2 cores as the broker. A broker that needs more CPU also "
            "slows its clients; a broker that buffers instead of pushing back lets the publishers run ahead.",
            "- Mosquitto is single-threaded by design (at most one core); ours and rumqttd use both.",
            "- QoS 1 overload policies differ: ours and Mosquitto acknowledge a publish and then drop it when a "
            "subscriber's queue (1000 beyond 100 in flight) is full, which counts as lost here; rumqttd keeps "
            "everything in its in-memory commit log (no loss, but gigabytes of RSS and seconds of latency).",
            "- QoS 0 \"lost\" means dropped by the broker, which QoS 0 allows, or still queued in it when the "
            "subscribers gave up (22 s after the window); a latency of — means no message stamped inside the "
            "window arrived by then.",
            "- The machine may be shared with other jobs (the load average is under Versions): absolute numbers "
            "and tail latencies move between runs; compare the ratios of one run.",
            "- Each broker's listen backlog (in Versions) bounds a connect burst: SYNs beyond it are dropped and "
            "retried by the kernel after 1 s, which dominates connect p99.",
            "- Idle memory is the broker's RSS 2 s after the last connect minus its RSS before the first, per "
            "connection; the allocator's reuse and page granularity blur it by some hundred bytes.",
            ]
    out += ["", "## Overview", "", "![how many times better ours is, per scenario](docs/bench/overview.svg)"]
    out += ["", "## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    out += [f"| {t} | {mv} | {ok} |" for t, mv, ok in goals]
    out += ["", "## Where we are behind", ""]
    out += [f"- {b}" for b in behind] or ["- Nowhere in this run."]
    out += ["", "## Scenarios", ""] + sections
    with open(os.path.join(args.out, "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
