//! The documentation stays true to the repository: every path `DESIGN.md` names exists, the
//! README stays a guide of at most 500 lines that opens with the two set-up commands, and every
//! relative link in README.md, DESIGN.md and docs/*.md points at an existing file.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The text inside inline code spans (single backticks), outside fenced code blocks.
fn code_spans(markdown: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            spans.push(inside.to_string());
        }
    }
    spans
}

/// Targets of inline links `[text](target)` outside fenced code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans so `[i](j)`-like code is not read as a link.
        let text: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            match after.find(')') {
                Some(end) => {
                    targets.push(after[..end].to_string());
                    rest = &after[end + 1..];
                }
                None => break,
            }
        }
        // HTML images: <img src="...">
        let mut rest = text.as_str();
        while let Some(at) = rest.find("src=\"") {
            let after = &rest[at + 5..];
            match after.find('"') {
                Some(end) => {
                    targets.push(after[..end].to_string());
                    rest = &after[end + 1..];
                }
                None => break,
            }
        }
    }
    targets
}

const PATH_PREFIXES: &[&str] = &["src/", "tests/", "tools/", "docs/", "examples/", "benches/"];

#[test]
fn every_path_design_md_names_exists() {
    let design = read("DESIGN.md");
    let mut checked = 0;
    let mut missing = Vec::new();
    for span in code_spans(&design) {
        if !PATH_PREFIXES.iter().any(|p| span.starts_with(p)) {
            continue;
        }
        if span.contains(char::is_whitespace) || span.contains('*') || span.contains('<') {
            missing.push(format!("{span} (not a plain path)"));
            continue;
        }
        checked += 1;
        if !root().join(span.trim_end_matches('/')).exists() {
            missing.push(span);
        }
    }
    assert!(
        missing.is_empty(),
        "DESIGN.md names paths that do not exist: {missing:?}"
    );
    assert!(
        checked >= 10,
        "DESIGN.md names only {checked} repository paths"
    );
}

#[test]
fn readme_is_a_short_guide_that_opens_with_the_setup_commands() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 500,
        "README.md has {lines} lines; at most 500 (history goes to docs/)"
    );
    let mut blocks = readme.split("```").skip(1);
    let first = blocks.next().expect("README.md has no code block");
    let commands: Vec<&str> = first
        .lines()
        .skip(1) // the info string (`bash`)
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        commands,
        [
            "cargo run --release -- demo",
            "RELEVANCE_DATA=$(tools/fetch-data.sh) cargo test"
        ],
        "the README's first code block must hold the two set-up commands"
    );
}

#[test]
fn relative_links_point_at_existing_files() {
    let mut files: Vec<PathBuf> = vec![root().join("README.md"), root().join("DESIGN.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ holds no markdown");
    files.extend(docs);
    let mut broken = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let dir = file.parent().unwrap_or(Path::new("."));
        for target in link_targets(&text) {
            let path = target.split('#').next().unwrap_or("").trim();
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            if !dir.join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to missing files: {broken:?}");
}
