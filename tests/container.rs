//! No Docker engine runs on our machines, so the Dockerfile is checked for what matters: a
//! build stage and a small runtime stage, a non-root user, the product as entrypoint serving on
//! the chart's port, and the sample calls the chart's `helm test` replays.

#[test]
fn the_dockerfile_builds_a_small_non_root_image_with_the_samples() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(
        stages[0].starts_with("FROM rust:") && stages[0].ends_with(" AS build"),
        "{stages:?}"
    );
    assert_eq!(
        stages[1], "FROM gcr.io/distroless/cc-debian12:nonroot",
        "a small runtime base without a shell"
    );
    let runtime = &lines[lines.iter().position(|l| *l == stages[1]).unwrap()..];
    assert!(
        runtime.contains(&"USER 65532:65532"),
        "runs as the chart's non-root uid"
    );
    assert!(runtime.contains(&"ENTRYPOINT [\"/usr/local/bin/hearken\"]"));
    assert!(runtime.contains(&"CMD [\"serve\", \"--plaintext\", \"--addr\", \"0.0.0.0:50051\"]"));
    assert!(runtime.contains(&"EXPOSE 50051"));
    assert!(
        runtime.contains(&"COPY --from=build /src/samples /usr/share/hearken/samples"),
        "helm test replays a bundled call"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("RUN cargo build --release --locked"))
    );
    // The samples path is the one the chart's test hook uses.
    let hook = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/helm/hearken/templates/tests/test-replay.yaml"
    ))
    .unwrap();
    assert!(hook.contains("/usr/share/hearken/samples/demo-calls.jsonl"));
    // Every file outside src/ that the code embeds (include_bytes!, include_str!) is copied
    // into the build stage: the learned model was not, once.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in embedded_dirs(&root.join("src"), root) {
        assert!(
            lines.contains(&format!("COPY {dir} {dir}").as_str()),
            "the build embeds files from {dir}/ but the Dockerfile does not copy it"
        );
    }
    // Everything the build copies exists.
    for path in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "proto",
        "src",
        "samples",
        "models",
        "benches",
        "examples",
    ] {
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(path)
                .exists(),
            "{path}"
        );
    }
}

/// The top-level folders (other than src) that files under `dir` embed.
fn embedded_dirs(
    dir: &std::path::Path,
    root: &std::path::Path,
) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(embedded_dirs(&path, root));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for macro_name in ["include_bytes!(\"", "include_str!(\""] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = &text[at + macro_name.len()..];
                let Some(end) = rest.find('"') else { continue };
                let target = path.parent().unwrap().join(&rest[..end]);
                let Ok(target) = target.canonicalize() else {
                    continue;
                };
                if let Ok(rel) = target.strip_prefix(root.canonicalize().unwrap())
                    && let Some(first) = rel.components().next()
                {
                    let first = first.as_os_str().to_string_lossy().into_owned();
                    if first != "src" {
                        out.insert(first);
                    }
                }
            }
        }
    }
    out
}
