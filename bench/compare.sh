#!/usr/bin/env bash
# Runs `hearken loadgen` against hearken and against the gRPC ceiling (examples/ceiling.rs),
# alternating, RUNS times per scenario, on loopback; prints medians and hearken/ceiling ratios.
#   bash bench/compare.sh            # RUNS=3 DURATION=10 by default
#   RUNS=5 DURATION=20 bash bench/compare.sh
#   HEARKEN=/path/to/another/hearken bash bench/compare.sh   # a build to compare
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
cargo build --release --quiet --bin hearken --example ceiling
HEARKEN=${HEARKEN:-target/release/hearken}
CEILING=target/release/examples/ceiling
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HP=$(port); CP=$(port)
# Throughput runs exceed the default 50 messages/s per conversation and the default 10
# stream opens/s per tenant on purpose (every load-generated call is a stream from one IP).
"$HEARKEN" serve --plaintext --addr "127.0.0.1:$HP" --metrics-addr off --drain-delay 0s --max-messages-per-second 1000000 --stream-opens-per-second 0 2>/dev/null & H=$!
"$CEILING" "127.0.0.1:$CP" 2>/dev/null & C=$!
trap 'kill -INT $H $C 2>/dev/null || true' EXIT
sleep 1
OUT=$(mktemp -d)
# name | loadgen flags
SCENARIOS=(
  "saturation-256x4|--calls 256 --connections 4 --rate 0 --window 4"
  "1000-calls-1000ps|--calls 1000 --connections 4 --rate 1000"
  "1000-calls-5000ps|--calls 1000 --connections 4 --rate 5000"
)
for s in "${SCENARIOS[@]}"; do
  name=${s%%|*}; flags=${s#*|}
  for run in $(seq 1 "$RUNS"); do
    for target in hearken ceiling; do
      p=$HP; [ "$target" = ceiling ] && p=$CP
      # shellcheck disable=SC2086
      "$HEARKEN" loadgen --addr "http://127.0.0.1:$p" $flags --duration "$DURATION" --json >> "$OUT/$name.$target.jsonl"
    done
  done
done
python3 - "$OUT" "${SCENARIOS[@]}" <<'PY'
import json, statistics, sys, os
out = sys.argv[1]
print(f"{'scenario':22} {'target':8} {'throughput/s':>12} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} {'errors':>6}")
for s in sys.argv[2:]:
    name = s.split('|')[0]
    med = {}
    for target in ('hearken', 'ceiling'):
        runs = [json.loads(l) for l in open(os.path.join(out, f"{name}.{target}.jsonl"))]
        m = {k: statistics.median(r[k] for r in runs) for k in ('throughput', 'errors')}
        for q in ('p50', 'p99', 'p999'):
            m[q] = statistics.median(r['latency_us'][q] for r in runs)
        med[target] = m
        print(f"{name:22} {target:8} {m['throughput']:12.0f} {m['p50']:8.0f} {m['p99']:8.0f} {m['p999']:9.0f} {m['errors']:6.0f}")
    h, c = med['hearken'], med['ceiling']
    print(f"{name:22} {'ratio':8} {h['throughput']/c['throughput']:12.2f} {h['p50']/c['p50']:8.2f} {h['p99']/c['p99']:8.2f} {h['p999']/c['p999']:9.2f}")
PY
