//! The engine is pure: nothing under `src/engine/` may reach for async runtimes, the network,
//! the generated wire types, files, the environment, clocks or process-wide state. And every
//! module of the crate imports only the layers before it.

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
    // No process-wide state: the listening model travels with the rubric's profiles.
    "OnceLock",
    "Atomic",
    "static mut",
];

/// The crate's Rust files under `src/<under>` (`""`: all of them).
fn sources(under: &str) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .join(under),
        &mut files,
    );
    files
}

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
    let files = sources("engine");
    assert!(files.len() > 10, "found the engine's files");
    let mut offences = Vec::new();
    for file in files {
        let text = code_only(&std::fs::read_to_string(&file).unwrap());
        for (n, code) in text.lines().enumerate() {
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

/// The crate's modules, each depending only on those before it (`src/lib.rs`, `README.md`).
const LAYERS: &[&str] = &[
    "config",
    "engine",
    "redact",
    "proto",
    "transcript",
    "training",
    "input",
    "samples",
    "tls",
    "telemetry",
    "host",
    "pipeline",
    "service",
    "floor",
    "server",
    "cli",
];

/// The top-level modules a line of code names through `crate::` (plain paths and
/// `use crate::{a::…, b}` groups).
fn crate_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Names at the group's first level.
            let mut depth = 0;
            let mut name = String::new();
            let mut first = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        first = true;
                        name.clear();
                    }
                    c if depth == 0 && first && (c.is_alphanumeric() || c == '_') => name.push(c),
                    ':' if depth == 0 && first && !name.is_empty() => {
                        found.push(std::mem::take(&mut name));
                        first = false;
                    }
                    c if c.is_whitespace() => {}
                    _ if depth == 0 && first && !name.is_empty() => {
                        found.push(std::mem::take(&mut name));
                        first = false;
                    }
                    _ => {}
                }
            }
            if first && !name.is_empty() {
                found.push(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn every_module_imports_only_the_layers_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources("");
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut offences = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let mut parts = relative.components();
        let first = parts.next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(mine) = rank(&module) else {
            unknown.push(module);
            continue;
        };
        let text = code_only(&std::fs::read_to_string(file).unwrap());
        for (n, code) in text.lines().enumerate() {
            for used in crate_modules(code) {
                match rank(&used) {
                    Some(theirs) if theirs > mine => offences.push(format!(
                        "{}:{}: {module} uses {used}, a later layer",
                        relative.display(),
                        n + 1
                    )),
                    None => unknown.push(used),
                    _ => {}
                }
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "modules missing from LAYERS: {unknown:?}"
    );
    assert!(
        offences.is_empty(),
        "imports against the layer order ({}):\n{}",
        LAYERS.join(" < "),
        offences.join("\n")
    );
}

#[test]
fn the_import_scanner_reads_groups_and_paths() {
    assert_eq!(
        crate_modules("use crate::{engine::{self, Rubric}, proto::v1::*, redact};"),
        ["engine", "proto", "redact"]
    );
    assert_eq!(
        crate_modules("let x = crate::service::error::rejection(r); crate::floor::Floor"),
        ["service", "floor"]
    );
}

/// `code` with comments, string and character literals blanked (their newlines kept), so that
/// braces inside them are not counted.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep_newlines = |from: usize, to: usize, out: &mut String| {
        out.extend(
            chars[from..to.min(chars.len())]
                .iter()
                .filter(|c| **c == '\n'),
        );
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == 'r'
            && matches!(next, Some('"') | Some('#'))
            && (i == 0 || !chars[i - 1].is_alphanumeric())
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len()
                && !(chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')))
            {
                j += 1;
            }
            keep_newlines(i, j, &mut out);
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            keep_newlines(i, j, &mut out);
            i = j + 1;
        } else if c == '\''
            && (chars.get(i + 2) == Some(&'\'')
                || (next == Some('\\') && chars.get(i + 3) == Some(&'\'')))
        {
            i += if next == Some('\\') { 4 } else { 3 };
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Functions in `code` longer than `max` lines (from `fn` to its closing brace): name, line.
fn long_functions(code: &str, max: usize) -> Vec<(String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "fn") else {
            continue;
        };
        let before_ok = words[..at]
            .iter()
            .all(|w| w.starts_with("pub") || matches!(*w, "async" | "const" | "unsafe" | "extern"));
        if !before_ok || at + 1 >= words.len() {
            continue;
        }
        let (mut depth, mut started, mut end) = (0i64, false, None);
        for (j, l) in lines.iter().enumerate().skip(i) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        started = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if started && depth <= 0 {
                end = Some(j);
                break;
            }
            if !started && l.trim_end().ends_with(';') {
                break;
            }
        }
        if let Some(end) = end
            && end - i + 1 > max
        {
            let name: String = words[at + 1]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            long.push((name, i + 1));
        }
    }
    long
}

/// #31: functions that fit on a screen: at most ten over 80 lines in `src/`.
#[test]
fn at_most_ten_functions_in_src_run_over_80_lines() {
    let files = sources("");
    let mut long = Vec::new();
    for file in &files {
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        for (name, line) in long_functions(&code, 80) {
            long.push(format!("{}:{line} {name}", file.display()));
        }
    }
    long.sort();
    assert!(
        long.len() <= 10,
        "{} functions over 80 lines:\n{}",
        long.len(),
        long.join("\n")
    );
}

#[test]
fn the_function_counter_skips_braces_in_strings_and_comments() {
    let code = code_only("fn a() {\n let s = \"{{\"; // }\n let c = '{';\n let r = r#\"}\"#;\n}\n");
    assert_eq!(code.matches('{').count(), 1);
    assert_eq!(code.matches('}').count(), 1);
    let body = (0..81).map(|_| "    x();\n").collect::<String>();
    let code = format!("pub(crate) fn long() {{\n{body}}}\nfn short() {{}}\n");
    assert_eq!(long_functions(&code, 80), vec![("long".to_string(), 1)]);
}
