#!/usr/bin/env python3
"""Learning curves of `hearken train`: how much a site's own labels buy, and from which start.

Splits a labelled file's conversations once (seeded) into a test share, never trained on, and a
pool; for each size N (10, 25, 50, 100, all of the pool) and each repeat, trains on N
conversations drawn from the pool, once `--start default` and once `--start scratch`, and
measures the whole engine on the test conversations with `hearken eval --model`. The base
model's figures on the same test conversations are the row to beat.

    python3 bench/learning_curve.py --file /tmp/dev/esconv-dev.jsonl --behaviours reflection

A fair test of "start from the default" needs conversations the base model never learned from:
the shipped model learned from the AnnoMI development half and the team's sets, so a curve on
those is in-sample for the base and for `--start default`. Files whose licence is for
measuring only (ESConv, SwDA, DCH-1) may be used here: the models this writes go to a
temporary folder and are deleted; never ship one.
"""
import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return done.stdout


def f1s(report, behaviours):
    out = {}
    for b in behaviours:
        c = report["behaviours"].get(b)
        out[b] = None if c is None else c["f1"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hearken", default=str(REPO / "target/release/hearken"))
    ap.add_argument("--file", required=True, help="labelled conversations (hearken JSON Lines)")
    ap.add_argument("--behaviours", required=True, help="comma-separated, as `hearken train` takes them")
    ap.add_argument("--sizes", default="10,25,50,100,all", help="training sizes in conversations")
    ap.add_argument("--repeats", type=int, default=3, help="draws per size below the whole pool")
    ap.add_argument("--test-share", type=float, default=0.3, help="share of conversations held out")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--per-unit", action="store_true", help="count split units once (SwDA)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()
    behaviours = [b.strip() for b in args.behaviours.split(",") if b.strip()]
    lines = [l for l in Path(args.file).read_text().splitlines() if l.strip()]
    ids = [json.loads(l)["conversation_id"] for l in lines]
    if len(set(ids)) != len(ids):
        sys.exit("conversation ids repeat in the file; one conversation per line is expected")
    order = list(range(len(lines)))
    random.Random(args.seed).shuffle(order)
    n_test = max(1, round(len(order) * args.test_share))
    test, pool = order[:n_test], order[n_test:]
    tmp = Path(tempfile.mkdtemp(prefix="hearken-curve-"))
    test_file = tmp / "test.jsonl"
    test_file.write_text("".join(lines[i] + "\n" for i in sorted(test)))
    flags = ["--per-unit"] if args.per_unit else []

    def evaluate(model=None):
        cmd = [args.hearken] + (["--model", str(model)] if model else []) + ["eval", "--json", *flags, str(test_file)]
        return f1s(json.loads(run(cmd)), behaviours)

    rows = [{"size": "base", "start": "-", "repeat": 0, "f1": evaluate(), "seconds": 0.0}]
    sizes = [len(pool) if s == "all" else int(s) for s in args.sizes.split(",")]
    for size in sizes:
        size = min(size, len(pool))
        repeats = 1 if size == len(pool) else args.repeats
        for r in range(repeats):
            draw = list(pool)
            random.Random(args.seed * 1000 + r).shuffle(draw)
            train_file = tmp / f"train-{size}-{r}.jsonl"
            train_file.write_text("".join(lines[i] + "\n" for i in sorted(draw[:size])))
            for start in ("default", "scratch"):
                model = tmp / f"m-{size}-{r}-{start}.safetensors"
                t0 = time.monotonic()
                run([args.hearken, "train", str(train_file), "--out", str(model), "--start", start,
                     "--behaviours", ",".join(behaviours), "--no-engine-cv", "--allow-rejections"])
                secs = time.monotonic() - t0
                rows.append({"size": size, "start": start, "repeat": r, "f1": evaluate(model),
                             "seconds": round(secs, 2)})
                model.unlink()
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    summary = {"file": args.file, "test_conversations": len(test), "pool": len(pool),
               "behaviours": behaviours, "seed": args.seed, "rows": rows}
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    print(f"{Path(args.file).name}: {len(test)} test conversations, never trained on; pool {len(pool)}")
    print(f"{'size':>6} {'start':<8} " + " ".join(f"{b:>22}" for b in behaviours) + "   train s")
    groups = {}
    for row in rows:
        groups.setdefault((row["size"], row["start"]), []).append(row)
    for (size, start), rs in groups.items():
        cells = []
        for b in behaviours:
            v = [x["f1"][b] for x in rs if x["f1"][b] is not None]
            if not v:
                cells.append(f"{'-':>22}")
            elif len(v) == 1:
                cells.append(f"{v[0]:>22.3f}")
            else:
                cells.append(f"{sum(v) / len(v):>8.3f} ({min(v):.3f}–{max(v):.3f})")
        secs = max(x["seconds"] for x in rs)
        print(f"{size!s:>6} {start:<8} " + " ".join(cells) + f"   {secs:7.1f}")


if __name__ == "__main__":
    main()
