#!/usr/bin/env python3
"""Soak (R-SOAK-1): `hearken serve` under `hearken loadgen` at a fixed rate (by default 1 000
calls sharing 1 000 utterances/s, calls ending and starting again all along), sampling the
server's RSS, open file descriptors and threads from /proc every second and its live
conversations from /metrics. Passes when, after the warm-up, RSS and fds grow by at most 5 %
(plus 1 MiB / 2 fds of noise), live conversations stay bounded and loadgen saw no errors.

    python3 bench/soak.py [--hearken target/release/hearken] [--duration 150] [--warmup 70]

Prints a sample line every 10 s and a JSON summary at the end; exits 1 on failure.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sample(pid, metrics_port):
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status)[1])
    threads = int(re.search(r"Threads:\s+(\d+)", status)[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    live = re.search(r"^hearken_conversations_active\S* (\S+)$", text, re.M)
    return {"rss_kb": rss_kb, "fds": fds, "threads": threads, "conversations": float(live[1]) if live else 0.0}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hearken", default="target/release/hearken")
    p.add_argument("--duration", type=int, default=150, help="seconds of load")
    p.add_argument("--warmup", type=int, default=70, help="seconds before the baseline sample (ended ids linger 60 s)")
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--rate", type=int, default=1000, help="utterances per second in total")
    args = p.parse_args()

    port, metrics_port = free_port(), free_port()
    server = subprocess.Popen(
        [args.hearken, "serve", "--plaintext", "--addr", f"127.0.0.1:{port}",
         "--metrics-addr", f"127.0.0.1:{metrics_port}", "--drain-delay", "0s",
         "--stream-opens-per-second", "0"],
        stderr=subprocess.DEVNULL, env={**os.environ, "HEARKEN_LOG": "warn"})
    try:
        for _ in range(100):
            try:
                sample(server.pid, metrics_port)
                break
            except OSError:
                time.sleep(0.1)
        load = subprocess.Popen(
            [args.hearken, "loadgen", "--addr", f"http://127.0.0.1:{port}", "--calls", str(args.calls),
             "--connections", "4", "--rate", str(args.rate), "--duration", str(args.duration), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples, started = [], time.time()
        while load.poll() is None:
            time.sleep(1)
            s = sample(server.pid, metrics_port)
            s["t"] = round(time.time() - started)
            samples.append(s)
            if s["t"] % 10 == 0:
                print(f"t={s['t']:4d}s rss={s['rss_kb'] / 1024:.1f} MiB fds={s['fds']} threads={s['threads']} live={s['conversations']:.0f}", flush=True)
        out, err = load.communicate()
    finally:
        server.terminate()
        server.wait(timeout=30)
    report = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"errors": -1, "stderr": err[-500:]}
    steady = [s for s in samples if args.warmup <= s["t"] <= args.duration]
    base, end = steady[0], steady[-1]
    rss_growth = (end["rss_kb"] - base["rss_kb"]) / base["rss_kb"]
    fd_growth = end["fds"] - base["fds"]
    summary = {
        "duration_s": args.duration, "calls": args.calls, "rate": args.rate,
        "rss_mib": {"baseline": round(base["rss_kb"] / 1024, 1), "end": round(end["rss_kb"] / 1024, 1),
                    "max": round(max(s["rss_kb"] for s in steady) / 1024, 1)},
        "rss_growth_pct": round(rss_growth * 100, 2),
        "fds": {"baseline": base["fds"], "end": end["fds"]},
        "threads": {"baseline": base["threads"], "end": end["threads"]},
        "live_conversations_max": max(s["conversations"] for s in steady),
        "loadgen": {k: report.get(k) for k in ("sent", "updates", "errors", "throughput", "latency_us") if k in report},
    }
    print(json.dumps(summary))
    ok = (end["rss_kb"] <= base["rss_kb"] * 1.05 + 1024
          and end["fds"] <= base["fds"] * 1.05 + 2
          and summary["live_conversations_max"] <= args.calls * 1.05
          and report.get("errors", 1) == 0)
    print("soak: " + ("ok" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
