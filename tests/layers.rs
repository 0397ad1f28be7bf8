//! Dependencies point one way: pages and API → services → stores → domain and database. Every
//! module of `src/` has a layer, and a module may name (`crate::…`) only modules of lower
//! layers: so `web` and `api` never import each other, nothing below imports them or
//! `startup`, and no two top-level modules can import each other. A new module must be given
//! its layer here.

use std::collections::BTreeSet;
use std::path::Path;

/// Layer of each top-level module of `src/`, lowest first.
const LAYERS: &[(&str, u8)] = &[
    // Values and infrastructure: they know nothing of the product's modules.
    ("domain", 0),
    ("db", 0),
    ("clock", 0),
    ("background", 0),
    ("telemetry", 0),
    ("http", 0),
    // Settings: which clock the server reads is one of them.
    ("config", 1),
    // The metrics registry: the handles of the pool (`db`) and of request times (`http`).
    ("metrics", 1),
    // Stores: rows and the queries that load and change them.
    ("users", 1),
    ("audit", 1),
    ("sessions", 2),
    ("applications", 2),
    // Services: each change one transaction with its audit event.
    ("policy", 3),
    // Mail about tokens: enqueued by the token services, sent by a thread of its own.
    ("notifications", 3),
    ("tokens", 4),
    ("accounts", 5),
    // Pages and the API, side by side.
    ("web", 6),
    ("api", 6),
    // What puts it all together, and tools.
    ("startup", 7),
    ("properties", 7),
];

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
        .unwrap_or_else(|| panic!("src/{module} has no layer in tests/layers.rs"))
}

/// The top-level modules a file names through `crate::`, comments left out.
fn named_modules(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                // `use crate::{api, web};` names each.
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|name| name.trim().split("::").next().unwrap_or_default())
                    .collect(),
                None => {
                    let name = rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or_default();
                    // `crate::route_table!` is a macro of the crate, not a module.
                    if rest[name.len()..].starts_with('!') {
                        vec![]
                    } else {
                        vec![name]
                    }
                }
            };
            found.extend(
                names
                    .into_iter()
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    found
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
fn every_module_names_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut checked = 0;
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs");
        // The crate roots only list and start modules; bin/ holds other programs of the crate.
        if top == "lib" || top == "main" || top == "bin" {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        for named in named_modules(&source) {
            if named == top {
                continue;
            }
            checked += 1;
            if layer(&named) >= layer(top) {
                upward.push(format!("{} names crate::{named}", relative.display()));
            }
        }
    }
    assert!(checked > 50, "the scan found only {checked} imports");
    assert!(
        upward.is_empty(),
        "imports against the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scan_sees_grouped_and_plain_paths_and_skips_comments() {
    let found =
        named_modules("use crate::{api, web::x};\nlet a = crate::db::Db::x(); // crate::startup\n");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["api", "db", "web"]);
}
