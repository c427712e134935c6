//! The engine is pure: nothing under `src/engine/` may reach for async runtimes, the network,
//! the generated wire types, files, the environment or clocks.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "tonic",
    "prost",
    "std::fs",
    "std::env",
    "std::net",
    "Instant::now",
    "SystemTime::now",
    "rand::",
    "async fn",
    ".await",
    "crate::proto",
    "crate::service",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn engine_imports_nothing_async_or_io() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine"),
        &mut files,
    );
    assert!(files.len() > 10, "found the engine's files");
    let mut offences = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    offences.push(format!("{}:{}: {word}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the engine must stay pure:\n{}",
        offences.join("\n")
    );
}
