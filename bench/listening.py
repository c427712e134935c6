#!/usr/bin/env python3
"""One table of the listening judgement on every development set (issue #28's figures).

Runs `hearken eval --json` on the development sets that ../shared/data builds (SwDA per unit,
as written and without punctuation; the AnnoMI half; ESConv, MAIA-DQE and DCH-1) and on the
team's contact-centre conversations (models/data/contact-centre.txt) and support chats
(models/data/support-chat.txt), then prints one row per
figure with its floor. Sets that are not there are said to be missing, not skipped silently.

    python3 bench/listening.py --hearken target/release/hearken --dev /tmp/dev [--json]

AnnoMI and the contact-centre set are what the embedded model learned from: their rows here are
in-sample. The cross-validated figures (fold models that never saw the conversation) come from
`models/build.py --cv`; the table says which is which.
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "models"))
from contact_centre import contact_centre  # noqa: E402  (models/contact_centre.py)

# (set, eval flags, what to read, floor, label). `f1:B` is behaviour B's F1, `p:B` its
# precision, `auc` the session AUC, `found:B` the utterances B was detected in (lower is better).
ROWS = [
    ("swda", ["--per-unit"], "f1:acknowledgement", 0.909, "SwDA ack"),
    ("swda", ["--per-unit"], "f1:closed_question", 0.772, "SwDA closed"),
    ("swda", ["--per-unit"], "f1:open_question", 0.676, "SwDA open"),
    ("swda", ["--per-unit"], "f1:clarifying_question", 0.643, "SwDA clarifying"),
    ("swda", ["--per-unit"], "f1:collaborative_completion", 0.350, "SwDA completion"),
    ("swda", ["--per-unit", "--strip-punctuation"], "f1:closed_question", None, "SwDA closed, no punctuation"),
    ("swda", ["--per-unit", "--strip-punctuation"], "f1:clarifying_question", None, "SwDA clarifying, no punctuation"),
    ("annomi", [], "f1:open_question", None, "AnnoMI open (in-sample)"),
    ("annomi", [], "f1:closed_question", None, "AnnoMI closed (in-sample)"),
    ("annomi", [], "f1:reflection", None, "AnnoMI reflection (in-sample)"),
    ("annomi", [], "auc", None, "AnnoMI session AUC (in-sample)"),
    ("esconv", [], "f1:reflection", 0.45, "ESConv reflection F1"),
    ("esconv", [], "p:reflection", 0.40, "ESConv reflection precision"),
    ("esconv", [], "f1:empathy", 0.45, "ESConv empathy F1"),
    ("esconv", [], "found:dismissive_language", 10, "ESConv dismissive utterances"),
    ("esconv", [], "auc", 0.60, "ESConv session AUC (empathy 5 vs 1-3)"),
    ("maia", [], "f1:empathy", 0.50, "MAIA-DQE empathy F1"),
    ("maia", [], "f1:customer_emotion", 0.45, "MAIA-DQE customer emotion F1"),
    ("maia", [], "auc", 0.60, "MAIA-DQE session AUC (task success)"),
    ("dch1", [], "auc", 0.70, "DCH-1 session AUC (satisfaction)"),
]
FILES = {
    "swda": "swda-dev.jsonl",
    "annomi": "annomi-dev.jsonl",
    "esconv": "esconv-dev.jsonl",
    "maia": "maia-dev.jsonl",
    "dch1": "dch1-dev.jsonl",
}
def run_eval(hearken, path, flags):
    cmd = [hearken, "eval", "--json", *flags, str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return json.loads(done.stdout)


def value(report, what):
    if what == "auc":
        q = report.get("quality")
        return q["auc"] if q else None
    kind, name = what.split(":")
    if kind == "found":
        return report["detected"].get(name, {}).get("utterances", 0)
    c = report["behaviours"].get(name)
    if c is None:
        return None
    return c["f1" if kind == "f1" else "precision"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hearken", default=str(REPO / "target/release/hearken"))
    ap.add_argument("--dev", default="/tmp/dev", help="folder the ../shared/data scripts wrote")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()
    dev = Path(args.dev)
    tmp = Path(tempfile.mkdtemp(prefix="hearken-listening-"))
    cc = tmp / "contact-centre.jsonl"
    contact_centre(REPO / "models/data/contact-centre.txt", cc)
    paths = {k: dev / v for k, v in FILES.items()}
    paths["cc"] = cc
    sc = tmp / "support-chat.jsonl"
    contact_centre(REPO / "models/data/support-chat.txt", sc, "sc-", "chat")
    paths["sc"] = sc
    cc_rows = [("cc", flags, f"f1:{b}", 0.80, f"contact-centre {b}{' (ASR)' if flags else ''} (in-sample)")
               for flags in ([], ["--strip-punctuation"])
               for b in ("open_question", "closed_question", "empathy", "reflection", "acknowledgement")]
    sc_rows = [("sc", [], f"f1:{b}", None, f"support chats {b} (in-sample)")
               for b in ("empathy", "reflection")]
    rows = ROWS + cc_rows + sc_rows
    jobs = sorted({(s, tuple(f)) for s, f, *_ in rows if paths[s].exists()})
    missing = sorted({s for s, *_ in rows if not paths[s].exists()})
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = dict(zip(jobs, pool.map(lambda j: run_eval(args.hearken, paths[j[0]], list(j[1])), jobs)))
    out, failed = [], 0
    for s, flags, what, floor, label in rows:
        report = reports.get((s, tuple(flags)))
        v = value(report, what) if report else None
        lower_better = what.startswith("found:")
        rv = round(v, 3) if isinstance(v, float) else v
        ok = None if v is None or floor is None else (rv <= floor if lower_better else rv >= floor)
        failed += ok is False
        out.append({"set": s, "measure": label, "value": v, "floor": floor, "ok": ok,
                    "at_most": lower_better})
    if args.json:
        print(json.dumps({"rows": out, "missing": missing}, indent=1))
    else:
        print(f"{'measure':<50} {'value':>8} {'floor':>8}  ")
        for r in out:
            v = "missing" if r["value"] is None else (f"{r['value']:.3f}" if isinstance(r["value"], float) else str(r["value"]))
            f = "" if r["floor"] is None else f"{'<=' if r['at_most'] else '>='}{r['floor']}"
            mark = {True: "ok", False: "BELOW", None: ""}[r["ok"]]
            print(f"{r['measure']:<50} {v:>8} {f:>8}  {mark}")
        if missing:
            print(f"missing sets (build them with ../shared/data): {', '.join(missing)}")
        print(f"{failed} figure(s) short of their floor")


if __name__ == "__main__":
    main()
