//! The module boundaries the README's Architecture section promises.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Files of `module` (`src/module.rs` or `src/module/**`).
fn module_files(module: &str) -> Vec<PathBuf> {
    let file = src().join(format!("{module}.rs"));
    let dir = src().join(module);
    let mut files = Vec::new();
    if file.exists() {
        files.push(file);
    }
    if dir.is_dir() {
        files.extend(rust_files(&dir));
    }
    assert!(!files.is_empty(), "module {module} not found");
    files
}

/// Files outside `allowed` modules that contain `needle`.
fn offenders(needle: &str, allowed: &[&str]) -> Vec<String> {
    let root = src();
    rust_files(&root)
        .into_iter()
        .filter(|path| {
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            !allowed
                .iter()
                .any(|m| rel == format!("{m}.rs") || rel.starts_with(&format!("{m}/")))
        })
        .filter(|path| std::fs::read_to_string(path).unwrap().contains(needle))
        .map(|path| path.display().to_string())
        .collect()
}

#[test]
fn only_store_names_sqlx() {
    assert_eq!(offenders("sqlx::", &["store"]), Vec::<String>::new());
}

#[test]
fn only_parse_names_feed_rs() {
    assert_eq!(offenders("feed_rs::", &["parse"]), Vec::<String>::new());
}

#[test]
fn only_api_names_axum() {
    assert_eq!(offenders("axum", &["api"]), Vec::<String>::new());
}

#[test]
fn only_api_names_hyper() {
    assert_eq!(offenders("hyper::", &["api"]), Vec::<String>::new());
    assert_eq!(offenders("hyper_util::", &["api"]), Vec::<String>::new());
}

#[test]
fn only_metrics_names_prometheus_client() {
    assert_eq!(
        offenders("prometheus_client", &["metrics"]),
        Vec::<String>::new()
    );
}

#[test]
fn leaf_stages_do_not_know_each_other_or_the_store() {
    let leaves = [
        "fetch",
        "parse",
        "normalize",
        "rules",
        "sinks",
        "discover",
        "opml",
    ];
    let forbidden = [
        "crate::fetch",
        "crate::parse",
        "crate::normalize",
        "crate::rules",
        "crate::sinks",
        "crate::store",
        "crate::ingest",
        "crate::app",
        "crate::cli",
        "crate::config",
        "crate::api",
        "crate::metrics",
    ];
    let mut found = Vec::new();
    for leaf in leaves {
        for file in module_files(leaf) {
            let text = std::fs::read_to_string(&file).unwrap();
            for needle in forbidden {
                if needle != format!("crate::{leaf}") && text.contains(needle) {
                    found.push(format!("{} uses {needle}", file.display()));
                }
            }
        }
    }
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn config_domain_and_manual_stand_alone() {
    let mut found = Vec::new();
    for module in ["config", "domain", "manual"] {
        for file in module_files(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            for line in text.lines().filter(|l| l.contains("use crate::")) {
                let own = format!("use crate::{module}");
                let allowed =
                    line.contains(&own) || (module == "config" && line.contains("crate::domain"));
                if !allowed {
                    found.push(format!("{}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert_eq!(found, Vec::<String>::new());
}
