//! `hearken train` end to end, on the team's own labelled conversations (models/data: written by
//! the team, shippable): the same inputs give the same bytes; only the behaviours labelled
//! change; too few labels warn and keep the base head; a bad label is an error naming its line;
//! the trained model loads in `score`, `eval` and `serve`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::SafeTensors;

fn hearken() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearken"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("hearken runs")
}

/// The team's text format (models/data/*.txt: "# conversation ID", "C: …", "A [labels]: …") as
/// labelled JSON Lines, as `models/contact_centre.py` writes it; `keep` picks the labels kept
/// (the others become `none`).
fn labelled(src: &str, out: &Path, keep: &[&str]) -> usize {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(src)).unwrap();
    fn name(short: &str) -> &str {
        match short {
            "open" => "open_question",
            "closed" => "closed_question",
            "clarifying" => "clarifying_question",
            "ack" => "acknowledgement",
            other => other,
        }
    }
    let mut lines = Vec::new();
    let mut current: Option<(String, Vec<serde_json::Value>)> = None;
    let mut flush = |c: Option<(String, Vec<serde_json::Value>)>| {
        if let Some((id, utterances)) = c {
            lines.push(
                serde_json::json!({"conversation_id": id, "utterances": utterances}).to_string(),
            );
        }
    };
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("# conversation ") {
            flush(current.take());
            current = Some((id.trim().to_string(), Vec::new()));
            continue;
        }
        let Some((_, utterances)) = current.as_mut() else {
            continue;
        };
        let n = utterances.len() + 1;
        if let Some(t) = line.strip_prefix("C: ") {
            utterances.push(serde_json::json!({"utterance_id": format!("u{n:04}"), "role": "customer", "text": t}));
        } else if let Some(rest) = line.strip_prefix("A [") {
            let (labels, t) = rest.split_once("]: ").unwrap();
            let mut b: Vec<&str> = labels
                .split(',')
                .map(|l| name(l.trim()))
                .filter(|l| keep.contains(l))
                .collect();
            if b.is_empty() {
                b.push("none");
            }
            utterances.push(serde_json::json!({"utterance_id": format!("u{n:04}"), "role": "agent", "text": t, "labels": {"behaviours": b}}));
        }
    }
    flush(current.take());
    std::fs::write(out, lines.join("\n") + "\n").unwrap();
    lines.len()
}

const ALL: &[&str] = &["open_question", "closed_question", "reflection", "empathy"];

/// A scratch folder of one test, removed when it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir() -> Scratch {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("hearken-train-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    Scratch(p)
}

fn train(files: &[&Path], out: &Path, extra: &[&str]) -> Output {
    run(hearken()
        .arg("train")
        .args(files)
        .arg("--out")
        .arg(out)
        .args(extra))
}

/// The tensors of a model file, by name.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect();
    all.sort();
    all
}

fn embedded_model(d: &Path) -> PathBuf {
    // The embedded model is the repository's file.
    let p = d.join("base.safetensors");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/listening.safetensors"),
        &p,
    )
    .unwrap();
    p
}

#[test]
fn the_same_inputs_give_the_same_bytes_and_the_report_compares_with_the_base() {
    let d = dir();
    let data = d.path().join("chats.jsonl");
    assert_eq!(labelled("models/data/support-chat.txt", &data, ALL), 44);
    let (a, b) = (
        d.path().join("a.safetensors"),
        d.path().join("b.safetensors"),
    );
    let first = train(&[&data], &a, &["--json", "--no-engine-cv"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = train(&[&data], &b, &["--json", "--no-engine-cv"]);
    assert!(second.status.success());
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same bytes twice"
    );
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let again: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(report["heads"], again["heads"], "same report twice");
    assert_eq!(report["conversations"], 44);
    let heads = report["heads"].as_array().unwrap();
    let reflection = heads
        .iter()
        .find(|h| h["behaviour"] == "reflection" && h["text"] == "punctuated")
        .expect("reflection trained");
    assert_eq!(reflection["trained"], true);
    // The shipped model has no empathy head: its column is empty, the rules decide there.
    let empathy = heads
        .iter()
        .find(|h| h["behaviour"] == "empathy" && h["text"] == "punctuated")
        .expect("empathy trained");
    assert!(empathy["base"].is_null(), "{empathy}");
    for side in ["new", "base"] {
        let c = &reflection[side];
        let labelled_positive = c["tp"].as_u64().unwrap() + c["fn"].as_u64().unwrap();
        assert_eq!(
            labelled_positive,
            reflection["positives"].as_u64().unwrap(),
            "{side}"
        );
    }
    // The model is different from the base and loads as a model.
    let base = embedded_model(d.path());
    assert_ne!(tensors(&a), tensors(&base));
}

#[test]
fn only_the_behaviours_labelled_change_byte_for_byte() {
    let d = dir();
    let data = d.path().join("reflection-only.jsonl");
    labelled("models/data/support-chat.txt", &data, &["reflection"]);
    let out = d.path().join("m.safetensors");
    let o = train(&[&data], &out, &["--no-engine-cv"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let base = tensors(&embedded_model(d.path()));
    let new = tensors(&out);
    assert_eq!(base.len(), new.len());
    for ((name, a), (name2, b)) in base.iter().zip(&new) {
        assert_eq!(name, name2);
        if name.starts_with("head.reflection") {
            assert_ne!(a, b, "{name} retrained");
        } else {
            assert_eq!(a, b, "{name} untouched");
        }
    }
    // Asked for by name, the same.
    let out2 = d.path().join("m2.safetensors");
    assert!(
        train(&[&data], &out2, &["--behaviours", "reflection"])
            .status
            .success()
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
}

#[test]
fn too_few_labels_warn_and_keep_the_base_head() {
    let d = dir();
    let data = d.path().join("few.jsonl");
    let all = d.path().join("all.jsonl");
    labelled("models/data/support-chat.txt", &all, &["open_question"]);
    // Three conversations: a handful of open questions at most.
    let three: Vec<&str> = std::fs::read_to_string(&all)
        .unwrap()
        .leak()
        .lines()
        .take(3)
        .collect();
    std::fs::write(&data, three.join("\n") + "\n").unwrap();
    let out = d.path().join("m.safetensors");
    let o = train(&[&data], &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("warning: open_question"), "{stdout}");
    assert!(
        stdout.contains("too few examples to train") || stdout.contains("few examples"),
        "{stdout}"
    );
    // Nothing labelled at all: a clear error, no model.
    let none = d.path().join("none.jsonl");
    labelled("models/data/support-chat.txt", &none, &[]);
    let out = d.path().join("none.safetensors");
    let o = train(&[&none], &out, &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to train"));
    assert!(!out.exists());
}

#[test]
fn a_bad_label_is_an_error_naming_its_line_and_no_model_is_written() {
    let d = dir();
    let data = d.path().join("bad.jsonl");
    labelled("models/data/support-chat.txt", &data, ALL);
    let mut text = std::fs::read_to_string(&data).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut third = lines[2].clone();
    third = third.replacen("\"none\"", "\"reflektion\"", 1);
    assert_ne!(third, lines[2]);
    text = [lines[..2].to_vec(), vec![third], lines[3..].to_vec()]
        .concat()
        .join("\n");
    std::fs::write(&data, text).unwrap();
    let out = d.path().join("m.safetensors");
    let o = train(&[&data], &out, &["--no-engine-cv"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.jsonl:3:"), "{err}");
    assert!(err.contains("unknown behaviour \"reflektion\""), "{err}");
    assert!(!out.exists());
    // An unknown head asked for.
    let o = train(&[&data], &out, &["--behaviours", "acknowledgement"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no head to train"));
}

#[test]
fn the_trained_model_loads_in_score_eval_and_serve() {
    let d = dir();
    let data = d.path().join("chats.jsonl");
    labelled("models/data/support-chat.txt", &data, ALL);
    let out = d.path().join("m.safetensors");
    let quick = ["--no-engine-cv", "--behaviours", "reflection"];
    assert!(train(&[&data], &out, &quick).status.success());
    let o = run(hearken().arg("--model").arg(&out).arg("score").arg(&data));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("scorecard"));
    let o = run(hearken().env("HEARKEN_MODEL", &out).arg("eval").arg(&data));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `serve` loads it and answers health checks; then stops on SIGTERM.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = hearken()
        .arg("--model")
        .arg(&out)
        .args(["serve", "--plaintext", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--metrics-addr", "off", "--drain-delay", "0s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut up = false;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("serve exited with the trained model: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "serve listens with the trained model");
    // With the site's rubric (as `serve --rubric` gets it); a broken one is refused by name.
    let rubric = d.path().join("site.toml");
    std::fs::write(&rubric, "[profiles.voice.scoring.weights]\nempathy = 2.0\n").unwrap();
    let with_rubric = d.path().join("r.safetensors");
    let o = train(
        &[&data],
        &with_rubric,
        &[
            "--rubric",
            rubric.to_str().unwrap(),
            "--behaviours",
            "reflection",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(&rubric, "[profiles.voice\n").unwrap();
    let o = train(
        &[&data],
        &with_rubric,
        &["--rubric", rubric.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rubric"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A file that is not a model is refused by name.
    let o = run(hearken().arg("--model").arg(&data).arg("score").arg(&data));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--model"));
}

/// Any format `score` reads, with the labels in a file beside it: the support chats as Google
/// CCAI Insights files (one per conversation, in a folder; utterance ids `e1`, `e2`, … as the
/// reader gives them) and a labels file train to the same bytes as the same chats in hearken's
/// format; a label matching no utterance is counted as not used, and a bad one names the
/// labels file's line.
#[test]
fn a_platform_format_with_a_labels_file_trains_as_hearkens_own() {
    let d = dir();
    let jsonl = d.path().join("chats.jsonl");
    labelled("models/data/support-chat.txt", &jsonl, &["reflection"]);
    let folder = d.path().join("ccai");
    std::fs::create_dir_all(&folder).unwrap();
    let (mut chat_lines, mut sidecar) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(&jsonl).unwrap().lines() {
        let mut c: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = c["conversation_id"].as_str().unwrap().to_string();
        let mut entries = Vec::new();
        for (n, u) in c["utterances"].as_array().unwrap().iter().enumerate() {
            let agent = u["role"] == "agent";
            entries.push(serde_json::json!({
                "start_timestamp_usec": 1_793_766_404_000_000u64 + n as u64 * 20_000_000,
                "text": u["text"],
                "role": if agent { "AGENT" } else { "CUSTOMER" },
                "user_id": if agent { 2 } else { 1 },
            }));
            if let Some(labels) = u.get("labels") {
                sidecar.push(
                    serde_json::json!({"conversation_id": id, "utterance_id": format!("e{}", n + 1), "labels": labels})
                        .to_string(),
                );
            }
        }
        std::fs::write(
            folder.join(format!("{id}.json")),
            serde_json::json!({ "entries": entries }).to_string(),
        )
        .unwrap();
        // The same conversation in hearken's format, as the CCAI reader reads it (a chat).
        c["channel"] = "chat".into();
        for (n, u) in c["utterances"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            u["utterance_id"] = format!("e{}", n + 1).into();
        }
        chat_lines.push(c.to_string());
    }
    // Conversations in the order the folder is read (by file name).
    chat_lines.sort_by_key(|l| {
        serde_json::from_str::<serde_json::Value>(l).unwrap()["conversation_id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let chats = d.path().join("chats-as-chat.jsonl");
    std::fs::write(&chats, chat_lines.join("\n") + "\n").unwrap();
    let labels = d.path().join("labels.jsonl");
    std::fs::write(&labels, sidecar.join("\n") + "\n").unwrap();
    let quick = ["--no-engine-cv", "--behaviours", "reflection"];
    let from_folder = |labels: &Path, out: &Path| {
        run(hearken()
            .arg("train")
            .arg(&folder)
            .arg("--labels")
            .arg(labels)
            .arg("--out")
            .arg(out)
            .args(quick))
    };
    let (a, b) = (
        d.path().join("a.safetensors"),
        d.path().join("b.safetensors"),
    );
    let o = train(&[&chats], &a, &quick);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = from_folder(&labels, &b);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "the same conversations and labels, the same model"
    );
    // A label for an utterance the files do not have: said and counted, no model written.
    let extra = d.path().join("extra.jsonl");
    std::fs::write(
        &extra,
        sidecar.join("\n")
            + "\n{\"conversation_id\": \"nope\", \"utterance_id\": \"e1\", \"labels\": {\"behaviours\": [\"reflection\"]}}\n",
    )
    .unwrap();
    let c = d.path().join("c.safetensors");
    let o = from_folder(&extra, &c);
    assert!(!o.status.success());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("1 labelled utterances match no utterance"),
        "{stdout}"
    );
    assert!(!c.exists());
    // A bad label names the labels file's line.
    let bad = d.path().join("bad.jsonl");
    let mut lines = sidecar.clone();
    lines[1] = lines[1]
        .replacen("\"reflection\"", "\"reflektion\"", 1)
        .replacen("\"none\"", "\"reflektion\"", 1);
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let o = from_folder(&bad, &c);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.jsonl:2:"), "{err}");
    assert!(err.contains("unknown behaviour \"reflektion\""), "{err}");
}

/// `--weight PATH=W`: a FILES argument's examples count W times (a different model than
/// unweighted); the whole-engine figures come per FILES argument as well as for all; a weight
/// for a file not given, or not above zero, is refused.
#[test]
fn a_weight_per_file_counts_its_examples_and_figures_come_per_file() {
    let d = dir();
    let all = d.path().join("all.jsonl");
    labelled("models/data/support-chat.txt", &all, &["reflection"]);
    let lines: Vec<String> = std::fs::read_to_string(&all)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (a, b) = (d.path().join("a.jsonl"), d.path().join("b.jsonl"));
    std::fs::write(&a, lines[..22].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[22..].join("\n") + "\n").unwrap();
    let quick = ["--no-engine-cv", "--behaviours", "reflection"];
    let (plain, weighted) = (
        d.path().join("plain.safetensors"),
        d.path().join("weighted.safetensors"),
    );
    assert!(train(&[&a, &b], &plain, &quick).status.success());
    let w = format!("{}=3", b.display());
    let o = train(
        &[&a, &b],
        &weighted,
        &[&quick[..], &["--weight", &w]].concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(&weighted).unwrap(),
        "weighted examples move the head"
    );
    // Per-file whole-engine figures, as JSON.
    let o = train(
        &[&a, &b],
        &weighted,
        &[
            "--json",
            "--behaviours",
            "reflection",
            "--folds",
            "2",
            "--weight",
            &w,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let engine = report["engine"].as_array().unwrap();
    let sources: Vec<&str> = engine.iter().filter_map(|f| f["source"].as_str()).collect();
    assert!(sources.contains(&a.to_str().unwrap()), "{report}");
    assert!(sources.contains(&b.to_str().unwrap()), "{report}");
    assert!(
        engine.iter().any(|f| f["source"].is_null()),
        "the total too"
    );
    // Refused: a file not given, a weight not above zero.
    let o = train(&[&a], &weighted, &["--weight", &w]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not one of the files given"));
    let zero = format!("{}=0", a.display());
    let o = train(&[&a], &weighted, &["--weight", &zero]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("above 0"));
}
