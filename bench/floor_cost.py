#!/usr/bin/env python3
"""The floor page's own cost (issue: 10 viewers over 1 000 live calls): `hearken serve
--ui-addr` under `hearken loadgen` (1 000 calls sharing a fixed utterance rate), sampling the
server's CPU time and RSS from /proc and loadgen's latency, first with no browser watching,
then (a second round of calls) with N viewers reading `/api/events` (plain HTTP clients that
read every event, as a browser does). Prints one JSON object: CPU (cores), RSS and update
latency in each phase, and per viewer the events, bytes and rows received per second and the
largest event.

    python3 bench/floor_cost.py [--hearken target/release/hearken] [--viewers 10] [--calls 1000]
"""
import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read())[1]) / 1024


class Viewer(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.events = 0
        self.bytes = 0
        self.largest = 0
        self.rows = 0
        self.stop = False

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/api/events")
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        size = 0
        while not self.stop:
            line = resp.readline()
            if not line:
                break
            self.bytes += len(line)
            size += len(line)
            if line.startswith(b"data:"):
                data = json.loads(line[5:])
                self.rows += len(data.get("rows", []))
            if line == b"\n":
                self.events += 1
                self.largest = max(self.largest, size)
                size = 0


def phase(pid, seconds):
    c0, t0 = cpu_seconds(pid), time.monotonic()
    rss = []
    end = t0 + seconds
    while time.monotonic() < end:
        time.sleep(1)
        rss.append(rss_mib(pid))
    return {"cpu_cores": round((cpu_seconds(pid) - c0) / (time.monotonic() - t0), 3),
            "rss_mib_mean": round(sum(rss) / len(rss), 1), "rss_mib_max": round(max(rss), 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hearken", default="target/release/hearken")
    p.add_argument("--viewers", type=int, default=10)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--rate", type=int, default=1000, help="utterances per second in total")
    p.add_argument("--phase", type=int, default=20, help="seconds per phase")
    args = p.parse_args()

    port, ui = free_port(), free_port()
    server = subprocess.Popen(
        [args.hearken, "serve", "--plaintext", "--addr", f"127.0.0.1:{port}", "--metrics-addr", "off",
         "--ui-addr", f"127.0.0.1:{ui}", "--ui-max-viewers", str(args.viewers + 5),
         "--drain-delay", "0s", "--stream-opens-per-second", "0"],
        stderr=subprocess.DEVNULL, env={**os.environ, "HEARKEN_LOG": "warn"})
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", ui), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        def loadgen():
            return subprocess.Popen(
                [args.hearken, "loadgen", "--addr", f"http://127.0.0.1:{port}", "--calls", str(args.calls),
                 "--rate", str(args.rate), "--duration", str(10 + args.phase), "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

        def report(load):
            out, _ = load.communicate(timeout=120)
            r = json.loads(out)
            return {"utterances_per_s": round(r["throughput"], 1), "latency_us": r["latency_us"], "errors": r["errors"]}

        # Without viewers: 10 s to open every call, then a measured phase.
        load = loadgen()
        time.sleep(10)
        without = phase(server.pid, args.phase)
        without["loadgen"] = report(load)
        # With viewers, connected before a second round of calls (the first round's calls are
        # on the floor as ended).
        viewers = [Viewer(ui) for _ in range(args.viewers)]
        for v in viewers:
            v.start()
        load = loadgen()
        time.sleep(10)
        counted = [(v.events, v.bytes, v.rows) for v in viewers]
        t0 = time.monotonic()
        with_viewers = phase(server.pid, args.phase)
        elapsed = time.monotonic() - t0
        per_viewer = [{"events_per_s": round((v.events - e) / elapsed, 2),
                       "kib_per_s": round((v.bytes - b) / elapsed / 1024, 1),
                       "rows_per_s": round((v.rows - r) / elapsed, 1),
                       "largest_event_kib": round(v.largest / 1024, 1)}
                      for v, (e, b, r) in zip(viewers, counted)]
        with_viewers["loadgen"] = report(load)
        for v in viewers:
            v.stop = True
        result = {
            "calls": args.calls, "rate": args.rate, "viewers": args.viewers,
            "without_viewers": without, "with_viewers": with_viewers,
            "per_viewer_mean": {k: round(sum(v[k] for v in per_viewer) / len(per_viewer), 2) for k in per_viewer[0]},
        }
        print(json.dumps(result, indent=2))
        starved = [i for i, v in enumerate(per_viewer) if v["events_per_s"] <= 0]
        if starved:
            raise SystemExit(f"viewers {starved} received no events")
        errors = without["loadgen"]["errors"] + with_viewers["loadgen"]["errors"]
        if errors:
            raise SystemExit(f"loadgen saw {errors} errors")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
