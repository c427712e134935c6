"""The team's contact-centre conversations (models/data/contact-centre.txt) in the development
sets' JSON Lines format: read by models/build.py (training) and bench/listening.py (measuring).
Standard library only."""
import json, re, sys
from pathlib import Path

LABELS = {"open": "open_question", "closed": "closed_question", "clarifying": "clarifying_question",
          "ack": "acknowledgement", "empathy": "empathy", "reflection": "reflection", "none": "none"}


def contact_centre(src, out, prefix="cc-", channel=None):
    """The team's text format to the dev-set JSON Lines format: conversation ids get `prefix`;
    `channel` ("chat") also names the rubric profile."""
    convs, cur = [], None
    for line in Path(src).read_text().splitlines():
        line = line.strip()
        m = re.match(r"# conversation (\S+)", line)
        if m:
            cur = {"conversation_id": prefix + m.group(1), "source": "hearken-team", "utterances": []}
            if channel:
                cur.update(channel=channel, rubric_profile=channel)
            convs.append(cur)
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"(C|A)(?: \[([^\]]*)\])?: (.*)", line)
        if not m or cur is None:
            sys.exit(f"{Path(src).name}: cannot read line: {line}")
        who, labels, text = m.groups()
        n = len(cur["utterances"]) + 1
        behaviours = [] if who == "C" else [LABELS[l.strip()] for l in labels.split(",")]
        cur["utterances"].append({"utterance_id": f"u{n:04d}", "role": "customer" if who == "C" else "agent",
                                  "text": text, "start_ms": None, "end_ms": None,
                                  "labels": {"behaviours": behaviours}})
    with open(out, "w") as f:
        for c in convs:
            f.write(json.dumps(c) + "\n")
    return len(convs)
