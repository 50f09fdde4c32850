#!/usr/bin/env python3
"""Measure cloudbase-ticket against the hardware limit and against node-sdk, in one run.

For RSA-1024 and RSA-2048 it measures, in interleaved rounds (the machine is noisy; every
figure is the median of its rounds, and every ratio is taken within the same run):

  * `openssl speed rsaN` sign/s           (1 process, and -multi <cores>)
  * `cloudbase-ticket bench`  tickets/s   (1 thread, and <cores> threads)
  * node-sdk 3.18.3 `createTicket`        (1 process, and <cores> processes)
  * the `jsonwebtoken` crate's `encode`   (1 thread; RSA-2048 only: it refuses 1024)

then bulk issuing (`issue --uids`) of 1k / 100k / 1M uids with wall time and peak RSS.

Writes a Markdown table and JSON to bench-results/, and the chart docs/perf.svg.

Usage: scripts/compare.sh [--rounds N] [--seconds S] [--bulk 1000,100000,1000000]
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {1024: "fixtures/tcb_custom_login.json", 2048: "fixtures/keys/rsa2048-pkcs1.json"}


def run(cmd):
    return subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout


def openssl_speed(bits, seconds, procs):
    cmd = ["openssl", "speed", "-seconds", str(int(round(seconds))), f"rsa{bits}"]
    if procs > 1:
        cmd[2:2] = ["-multi", str(procs)]
    out = run(cmd)
    # "rsa 1024 bits 0.000120s 0.000007s   8343.0 142011.5"
    for line in out.splitlines():
        m = re.match(rf"\s*rsa\s+{bits}\s+bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            return float(m.group(1))
    raise RuntimeError(f"no rsa{bits} line in openssl output:\n{out}")


def ours(binary, bits, seconds, threads):
    out = run([binary, "bench", "--credentials", KEYS[bits], "--seconds", str(seconds),
               "--threads", str(threads), "--json"])
    return json.loads(out.strip().splitlines()[-1])


def node(modules, bits, seconds, procs):
    env = dict(os.environ, ORACLE_NODE_MODULES=modules)
    cmd = ["node", "scripts/node/bench-node.js", KEYS[bits], str(seconds)]
    children = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    total = 0.0
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError("node bench failed")
        total += json.loads(out)["tickets_per_sec"]
    return total


def jsonwebtoken(binary, bits, seconds):
    out = run([binary, str(seconds), KEYS[bits]])
    row = json.loads(out.strip().splitlines()[-1])
    return row


def bulk(binary, count, threads):
    """Issue `count` tickets from a pipe; return (seconds, peak RSS in MiB)."""
    gen = subprocess.Popen(["python3", "-c", f"""
import sys
w = sys.stdout.write
for i in range({count}):
    w('user_%09d\\n' % i)
"""], stdout=subprocess.PIPE)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "issue", "--credentials", KEYS[1024],
                           "--uids", "-", "--threads", str(threads), "--out", "/dev/null"],
                          cwd=ROOT, stdin=gen.stdout, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    gen.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"bulk issue failed: {proc.stderr}")
    rss_kib = int(proc.stderr.strip().splitlines()[-1])
    del before
    return elapsed, rss_kib / 1024


def single_ticket_ms(binary, runs=50):
    """Wall time of one `cloudbase-ticket issue --uid …` process: what a shell harness pays per call."""
    times = []
    for i in range(runs):
        start = time.monotonic()
        subprocess.run([binary, "issue", "--credentials", KEYS[1024], "--uid", f"user_{i:04d}"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.monotonic() - start) * 1000)
    return statistics.median(times)


def svg_chart(results, cores, path):
    """A grouped bar chart, hand-written SVG (no plotting library needed)."""
    groups = [(bits, t) for bits in (1024, 2048) for t in (1, cores)]
    series = [("openssl speed (RSA sign/s)", "openssl", "#888888"),
              ("cloudbase-ticket (tickets/s)", "ours", "#2b6cb0"),
              ("node-sdk createTicket (tickets/s)", "node", "#dd6b20")]
    top_value = max(results[f"{kind}_{bits}_{t}"] for bits, t in groups for _, kind, _ in series)
    # A round axis: 5 steps of 1, 2 or 5 times a power of ten.
    magnitude = 10 ** len(str(int(top_value / 5))) / 10
    step = next(m * magnitude for m in (1, 2, 5, 10, 20) if m * magnitude * 5 >= top_value)
    vmax = step * 5
    width, height, left, bottom, top = 760, 380, 70, 60, 40
    plot_h = height - bottom - top
    group_w = (width - left - 20) / len(groups)
    bar_w = group_w / (len(series) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">Tickets per second, {platform.machine()} {cores} cores '
             f'(median of rounds, {results["date"]})</text>']
    for i in range(6):
        v = vmax * i / 5
        y = top + plot_h - plot_h * i / 5
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
    for gi, (bits, t) in enumerate(groups):
        x0 = left + gi * group_w + bar_w / 2
        for si, (_, kind, color) in enumerate(series):
            v = results[f"{kind}_{bits}_{t}"]
            h = plot_h * v / vmax
            x = x0 + si * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w * 0.9:.1f}" height="{h:.1f}" fill="{color}"/>')
            parts.append(f'<text x="{x + bar_w * 0.45:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle" font-size="10">{v:,.0f}</text>')
        label = f"RSA-{bits}, {t} thread{'s' if t > 1 else ''}"
        parts.append(f'<text x="{x0 + bar_w * 1.4:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{label}</text>')
    for si, (name, _, color) in enumerate(series):
        x = left + si * 230
        parts.append(f'<rect x="{x}" y="{height - 22}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{x + 16}" y="{height - 12}">{name}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--bulk", default="1000,100000,1000000", help="comma-separated uid counts ('' to skip)")
    ap.add_argument("--binary", default=str(ROOT / "target/release/cloudbase-ticket"))
    ap.add_argument("--jwt-binary", default=str(ROOT / "scripts/jwt-compare/target/release/jwt-compare"))
    ap.add_argument("--node-modules", required=True)
    args = ap.parse_args()
    cores = os.cpu_count() or 1

    samples = {}

    def record(key, value):
        samples.setdefault(key, []).append(value)

    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        for bits in (1024, 2048):
            for t in sorted({1, cores}):
                record(f"openssl_{bits}_{t}", openssl_speed(bits, args.seconds, t))
                b = ours(args.binary, bits, args.seconds, t)
                record(f"ours_{bits}_{t}", b["tickets_per_sec"])
                record(f"ours_p50_{bits}_{t}", b["p50_us"])
                record(f"ours_p99_{bits}_{t}", b["p99_us"])
                record(f"node_{bits}_{t}", node(args.node_modules, bits, args.seconds, t))
            print(f"  rsa{bits}: " + ", ".join(f"{k}={v[-1]:.0f}" for k, v in samples.items() if f"_{bits}_" in k), file=sys.stderr)
        jwt = jsonwebtoken(args.jwt_binary, 2048, args.seconds)
        record("jsonwebtoken_2048_1", jwt.get("tokens_per_sec", 0.0))
    jwt1024 = jsonwebtoken(args.jwt_binary, 1024, 0.2)

    results = {k: statistics.median(v) for k, v in samples.items()}
    results["date"] = datetime.date.today().isoformat()
    results["cores"] = cores
    results["rounds"] = args.rounds
    results["seconds"] = args.seconds
    results["jsonwebtoken_1024"] = jwt1024
    results["jsonwebtoken_2048_header"] = jwt.get("header")
    results["samples"] = samples

    bulk_rows = []
    for count in [int(c) for c in args.bulk.split(",") if c]:
        print(f"bulk {count}", file=sys.stderr)
        secs, rss = bulk(args.binary, count, cores)
        bulk_rows.append({"uids": count, "seconds": round(secs, 2), "tickets_per_sec": round(count / secs), "peak_rss_mib": round(rss, 1)})
    results["bulk"] = bulk_rows
    results["single_issue_process_ms"] = single_ticket_ms(args.binary)

    lines = [f"Measured {results['date']} on {platform.machine()}, {cores} cores; median of {args.rounds} interleaved rounds of {args.seconds:g} s.", "",
             "| key | threads | openssl speed sign/s | cloudbase-ticket tickets/s | node-sdk tickets/s | ours / openssl | ours / node-sdk | p50 / p99 µs |",
             "|---|---|---|---|---|---|---|---|"]
    for bits in (1024, 2048):
        for t in sorted({1, cores}):
            o, u, n = results[f"openssl_{bits}_{t}"], results[f"ours_{bits}_{t}"], results[f"node_{bits}_{t}"]
            lines.append(f"| RSA-{bits} | {t} | {o:,.0f} | {u:,.0f} | {n:,.0f} | {u / o:.2f} | {u / n:.1f} | "
                         f"{results[f'ours_p50_{bits}_{t}']:.0f} / {results[f'ours_p99_{bits}_{t}']:.0f} |")
    lines.append("")
    for bits in (1024, 2048):
        lines.append(f"- RSA-{bits} scaling, {cores} threads / 1 thread: ours {results[f'ours_{bits}_{cores}'] / results[f'ours_{bits}_1']:.2f}, "
                     f"openssl {results[f'openssl_{bits}_{cores}'] / results[f'openssl_{bits}_1']:.2f}")
    lines.append(f"- `jsonwebtoken` 12 (aws_lc_rs) `encode`, RSA-2048, 1 thread: {results['jsonwebtoken_2048_1']:,.0f} tokens/s "
                 f"(ours {results['ours_2048_1'] / max(results['jsonwebtoken_2048_1'], 1):.1f}× faster); header `{results['jsonwebtoken_2048_header']}`; "
                 f"RSA-1024: {jwt1024.get('error', 'signed')}")
    for row in bulk_rows:
        lines.append(f"- bulk `issue --uids -` of {row['uids']:,} uids on {cores} threads: {row['seconds']} s "
                     f"({row['tickets_per_sec']:,} tickets/s), peak RSS {row['peak_rss_mib']} MiB")
    lines.append(f"- one `cloudbase-ticket issue --uid` process, start to exit: {results['single_issue_process_ms']:.1f} ms (median of 50)")
    table = "\n".join(lines)
    print(table)

    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "compare-latest.md").write_text(table + "\n")
    (out_dir / "compare-latest.json").write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / "docs").mkdir(exist_ok=True)
    svg_chart(results, cores, ROOT / "docs/perf.svg")
    print(f"\nwrote bench-results/compare-latest.md, bench-results/compare-latest.json, docs/perf.svg", file=sys.stderr)


if __name__ == "__main__":
    main()
