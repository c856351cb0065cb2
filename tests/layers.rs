//! The library's layers, checked from its source: every `crate::` path in a module points to its own
//! layer or one below, no two modules import each other (directly or around a circle), and exactly one
//! module above the storage seam deletes, removes folders or aborts uploads.
//!
//! The layers, bottom up (the same list as `src/lib.rs` gives): a module that is not in the list fails
//! the test, so that a new one is placed on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: &[(&str, &[&str])] = &[
    (
        "model",
        &[
            "digest", "time", "text", "problem", "staged", "layout", "manifest",
        ],
    ),
    ("storage", &["storage"]),
    (
        "pipeline",
        &[
            "progress",
            "lock",
            "store_root",
            "inventory",
            "referrers",
            "manifest_cache",
            "catalog",
            "mark",
            "plan",
            "plan_file",
            "analysis",
            "recheck",
            "sweep",
            "cache",
        ],
    ),
    ("report", &["report"]),
    (
        "commands",
        &["gc", "apply", "prune", "du", "audit", "config"],
    ),
    ("outputs", &["metrics"]),
];

/// The binary's own modules (`src/main.rs` declares them): they reach the library as `regsweep::`.
const BINARY: &[&str] = &["main", "lib", "cli", "run", "display"];

/// The library's source without comments and test modules, by top-level module.
fn sources() -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if BINARY.contains(&top.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            let entry = out.entry(top).or_default();
            entry.push_str(&code.join("\n"));
            entry.push('\n');
        }
    }
    out
}

/// The top-level modules `code` names through `crate::` (also inside `use crate::{a, b::c}`).
fn imports(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

#[test]
fn every_import_points_to_its_own_layer_or_below_and_none_goes_round_a_circle() {
    let sources = sources();
    assert!(
        sources.len() > 20,
        "the source was found: {:?}",
        sources.keys()
    );
    let mut graph: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, code) in &sources {
        let own = layer_of(module)
            .unwrap_or_else(|| panic!("src/{module} is in no layer: add it to LAYERS and lib.rs"));
        let deps: BTreeSet<String> = imports(code)
            .into_iter()
            .filter(|d| d != module && sources.contains_key(d))
            .collect();
        for d in &deps {
            let theirs = layer_of(d).expect("every module has a layer");
            if theirs > own {
                upward.push(format!(
                    "{module} ({}) imports {d} ({})",
                    LAYERS[own].0, LAYERS[theirs].0
                ));
            }
        }
        graph.insert(module, deps);
    }
    assert!(upward.is_empty(), "imports pointing up: {upward:#?}");

    // A circle: a path from a module back to itself (depth-first, colouring).
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<&str, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == m).unwrap();
                let mut circle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                circle.push(m.to_owned());
                return Some(circle);
            }
            _ => {}
        }
        state.insert(m, 1);
        path.push(m);
        for d in &graph[m] {
            if let Some(c) = visit(d.as_str(), graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(m, 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        let circle = visit(m, &graph, &mut state, &mut Vec::new());
        assert_eq!(circle, None, "an import circle");
    }
}

#[test]
fn the_imports_of_a_module_are_read_from_use_groups_and_paths() {
    let code = "use crate::{digest::Digest, layout};\nlet x = crate::text::thousands(1);\n";
    let found: Vec<String> = imports(code).into_iter().collect();
    assert_eq!(found, ["digest", "layout", "text"]);
}

#[test]
fn only_the_sweep_deletes_removes_folders_or_aborts_uploads_above_the_seam() {
    let calls = [
        ".delete(",
        ".remove_empty_folders(",
        ".remove_folder_if_empty(",
        ".abort_multipart(",
    ];
    let sources = sources();
    let callers: BTreeSet<&str> = sources
        .iter()
        .filter(|(m, _)| m.as_str() != "storage")
        .filter(|(_, code)| calls.iter().any(|c| code.contains(c)))
        .map(|(m, _)| m.as_str())
        .collect();
    assert_eq!(callers, BTreeSet::from(["sweep"]));
}
