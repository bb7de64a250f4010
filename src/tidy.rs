//! Tidy tests, in the spirit of rust-analyzer's: checks of the source tree itself.
//!
//! `dependencies_run_one_way` reads every `crate::` path in `src/` (the library; `main.rs`
//! and `cli/` are the binary, which sees the library as `spate::`) and fails on one that
//! names a module above its own in `LAYERS`, the order ARCHITECTURE.md lists.

use std::path::Path;

/// The library's top-level modules, lowest first: a module may use the ones before it.
const LAYERS: &[&str] = &["config", "metrics", "io", "protocol", "storage", "cluster", "coordinator", "shard", "net", "broker", "server", "client", "fuzz"];

/// Macros exported at the crate root, and whose module they belong to.
const MACROS: &[(&str, &str)] = &[("message", "protocol")];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

/// The code of a line without its `//` comment (good enough for paths: no string in `src/`
/// holds `crate::`).
fn code(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

/// The top-level modules that `crate::` paths in `text` name, with their line numbers.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = code(line);
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue; // `$crate::` in a macro, or a longer identifier
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::x, b}`: every first segment in the group.
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        out.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push((n + 1, name));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn dependencies_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let first = relative.components().next().expect("a path").as_os_str().to_string_lossy().into_owned();
        let own = first.trim_end_matches(".rs").to_string();
        if own == "main" || own == "cli" || own == "lib" || own == "tidy" {
            continue;
        }
        let own_rank = rank(&own).unwrap_or_else(|| panic!("src/{} is in no layer of LAYERS: place it", relative.display()));
        let text = std::fs::read_to_string(file).expect("a readable source file");
        for (line, name) in named_modules(&text) {
            let owner = MACROS.iter().find(|(m, _)| *m == name).map_or(name.as_str(), |(_, owner)| owner);
            match rank(owner) {
                Some(r) if r <= own_rank => {}
                Some(_) => wrong.push(format!("src/{}:{line}: `{own}` uses `crate::{name}`, a layer above it", relative.display())),
                None => wrong.push(format!("src/{}:{line}: `crate::{name}` is no module of LAYERS", relative.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layer order (ARCHITECTURE.md):\n{}", wrong.join("\n"));
}

#[test]
fn the_scanner_sees_grouped_and_plain_paths() {
    let found = named_modules("use crate::{io::fs, storage};\nlet x = crate::net::y; // crate::broker\n$crate::protocol::wire");
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["io", "storage", "net"]);
}
