//! The library's layers and rooms, checked from its source:
//! - every `crate::` (and `super::`) path in a module points to its own layer or one below;
//! - inside `pipeline/`, every import between rooms follows the rooms' arrows ([`ROOMS`]);
//! - no two modules import each other, directly or around a circle (the storage backends' folders
//!   count as one module each, so a backend's files may use their folder's shared code);
//! - the binary (`src/bin/`) reaches the library through `commands`, `report` and the model and
//!   storage types only;
//! - above the storage seam, only `pipeline::execute` calls a method of the seam that changes the
//!   store (deletes, moves, writes, hides or unhides); every method of `trait Storage` and of its
//!   capabilities ([`CAPABILITIES`]) counts as such unless [`READS`] names it, so a new one is
//!   placed on purpose.
//!
//! A layer is a directory of `src/`, bottom up (the same list as `src/lib.rs` gives); a module is a
//! file in it (`mod.rs` is its directory's own module). A file outside the layers, or a folder of
//! `pipeline/` that is not a room, fails the test, so that a new one is placed on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: &[&str] = &["model", "storage", "pipeline", "report", "commands"];

/// The rooms of `pipeline/`, each with the rooms it may import (besides its own and the layers
/// below). `analysis` strings the others together and sits on top.
const ROOMS: &[(&str, &[&str])] = &[
    ("collect", &[]),
    ("plan", &["collect"]),
    ("guard", &["collect", "plan"]),
    ("retention", &["collect", "plan"]),
    ("execute", &["collect", "plan"]),
    (
        "analysis",
        &["collect", "plan", "guard", "retention", "execute"],
    ),
];

/// What the binary may import from the library.
const BINARY_MAY_USE: &[&str] = &["commands", "report", "model", "storage"];

/// The capabilities `trait Storage` hands out (`src/storage/capability.rs`), whose methods count
/// as the seam's.
const CAPABILITIES: &[&str] = &["Moves", "Versions", "Multipart", "Lock"];

/// The methods of `trait Storage` and its capabilities that leave the store as it is. Any other
/// method changes the store, and only `pipeline::execute` may call it.
const READS: &[&str] = &[
    // The accessors: what the store can do, and the store a decorator wraps.
    "moves",
    "versions",
    "multipart",
    "lock",
    "wrapped",
    "move_cost",
    "list",
    "list_lean",
    "list_below",
    "list_below_in_parts",
    "stat",
    "stop_listings_on",
    "child_folders",
    "read",
    "read_each",
    "read_chunks",
    "modified",
    "kept_version",
    "max_delete_keys",
    "link_proven",
    "versioning",
    "multipart_uploads",
    "list_every_version",
    "lists_every_version",
    // The lock's own object: taken, broken and released by `pipeline::guard::lock` only.
    "try_lock",
    "break_lock",
    "unlock",
    "listing_snapshot",
    "describe",
    "identity",
    "parallelism",
    "request_counts",
    "times_to_the_second",
    "lists_side_by_side",
];

struct Module {
    code: String,
}

/// The code of every `.rs` file under `dir`, without comments and test modules, keyed by its path
/// relative to `dir` as a module path (`pipeline::execute::sweep`, `storage::s3`).
fn read_tree(dir: &Path) -> BTreeMap<String, Module> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            // A module's tests: inline after `#[cfg(test)]`, or a `tests.rs` of their own (declared
            // `#[cfg(test)] mod tests;`).
            let text = if p.file_name().is_some_and(|n| n == "tests.rs") {
                String::new()
            } else {
                text
            };
            let code = text.split("#[cfg(test)]").next().unwrap();
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            out.insert(
                parts.join("::"),
                Module {
                    code: code.join("\n"),
                },
            );
        }
    }
    out
}

/// The library's modules (`src/` without `lib.rs` and `bin/`).
fn sources() -> BTreeMap<String, Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    read_tree(&src)
        .into_iter()
        .filter(|(m, _)| m != "lib" && m != "bin" && !m.starts_with("bin::"))
        .collect()
}

/// The paths of a use tree at the start of `s`: `a::b::C` is one, `a::{b, c::{d, e}}` three.
fn tree(s: &[u8], i: &mut usize) -> Vec<Vec<String>> {
    let skip = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip(i);
    let mut out = Vec::new();
    if s.get(*i) == Some(&b'{') {
        *i += 1;
        loop {
            skip(i);
            match s.get(*i) {
                None => break,
                Some(b'}') => {
                    *i += 1;
                    break;
                }
                Some(b',') => *i += 1,
                Some(_) => {
                    let before = *i;
                    out.extend(tree(s, i));
                    if *i == before {
                        *i += 1;
                    }
                }
            }
        }
        return out;
    }
    let start = *i;
    while *i < s.len() && (s[*i].is_ascii_alphanumeric() || s[*i] == b'_') {
        *i += 1;
    }
    let name = String::from_utf8_lossy(&s[start..*i]).into_owned();
    if name.is_empty() {
        return out;
    }
    if s[*i..].starts_with(b"::") {
        *i += 2;
        let subs = tree(s, i);
        if !subs.is_empty() {
            return subs
                .into_iter()
                .map(|p| std::iter::once(name.clone()).chain(p).collect())
                .collect();
        }
    }
    vec![vec![name]]
}

/// The longest leading part of `path` that is a module (`pipeline::execute::sweep::Failure` →
/// `pipeline::execute::sweep`), or its first element when none is.
fn module_of(path: &[String], modules: &BTreeSet<&str>) -> String {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m.as_str()))
        .unwrap_or_else(|| path[0].clone())
}

/// The modules `code` names through `root::` (`crate::` for the library, `regsweep::` for the
/// binary), and through `super::` when `at` (the module's own path) is given.
fn imports(code: &str, root: &str, at: Option<&str>, modules: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let pattern = format!("{root}::");
    for (i, _) in code.match_indices(&pattern) {
        if i > 0 && {
            let b = code.as_bytes()[i - 1];
            b.is_ascii_alphanumeric() || b == b'_' || b == b':'
        } {
            continue;
        }
        let mut end = i + pattern.len();
        for path in tree(code.as_bytes(), &mut end) {
            out.insert(module_of(&path, modules));
        }
    }
    if let Some(own) = at {
        // `super` is the module's parent, whether its file is a folder's `mod.rs` or not.
        let base: Vec<String> = own.split("::").map(str::to_owned).collect();
        for (i, _) in code.match_indices("super::") {
            if i > 0 && {
                let b = code.as_bytes()[i - 1];
                b.is_ascii_alphanumeric() || b == b'_' || b == b':'
            } {
                continue;
            }
            let Some(parent) = base.split_last().map(|(_, p)| p.to_vec()) else {
                continue;
            };
            let mut end = i + "super::".len();
            for path in tree(code.as_bytes(), &mut end) {
                let full: Vec<String> = parent.iter().cloned().chain(path).collect();
                if !full.is_empty() {
                    out.insert(module_of(&full, modules));
                }
            }
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap();
    LAYERS.iter().position(|l| *l == top)
}

/// The room of a `pipeline` module: `pipeline::execute::sweep` → `execute`,
/// `pipeline::analysis` → `analysis`; `None` outside `pipeline` and for `pipeline` itself.
fn room_of(module: &str) -> Option<&str> {
    let mut parts = module.split("::");
    (parts.next() == Some("pipeline"))
        .then(|| parts.next())
        .flatten()
}

/// What circles are found between: storage's backend folders count as one module each
/// (`storage::s3::...` → `storage::s3`), every other module as itself.
fn node_of(module: &str) -> String {
    let parts: Vec<&str> = module.split("::").collect();
    if parts[0] == "storage" && parts.len() > 2 {
        return parts[..2].join("::");
    }
    module.to_owned()
}

/// Each module's imports of other library modules.
fn graph(sources: &BTreeMap<String, Module>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<&str> = sources.keys().map(String::as_str).collect();
    sources
        .iter()
        .map(|(m, s)| {
            let deps = imports(&s.code, "crate", Some(m), &modules)
                .into_iter()
                .filter(|d| d != m && sources.contains_key(d))
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

/// A path from a module back to itself, if there is one (depth-first, colouring).
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| p == m).unwrap();
                let mut circle = path[start..].to_vec();
                circle.push(m.to_owned());
                return Some(circle);
            }
            _ => {}
        }
        state.insert(m.to_owned(), 1);
        path.push(m.to_owned());
        for d in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(m.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut state, &mut Vec::new()))
}

#[test]
fn every_import_points_to_its_own_layer_or_below_and_none_goes_round_a_circle() {
    let sources = sources();
    assert!(
        sources.len() > 60,
        "the source was found: {:?}",
        sources.keys()
    );
    let graph = graph(&sources);
    let mut upward = Vec::new();
    for (module, deps) in &graph {
        let own = layer_of(module).unwrap_or_else(|| {
            panic!("src/{module} is in no layer: put it in a layer's directory")
        });
        for d in deps {
            let theirs = layer_of(d).expect("every module has a layer");
            if theirs > own {
                upward.push(format!(
                    "{module} ({}) imports {d} ({})",
                    LAYERS[own], LAYERS[theirs]
                ));
            }
        }
    }
    assert!(upward.is_empty(), "imports pointing up: {upward:#?}");

    // Circles, with storage's backends as one module each.
    let mut nodes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, deps) in &graph {
        let n = node_of(m);
        let entry = nodes.entry(n.clone()).or_default();
        entry.extend(deps.iter().map(|d| node_of(d)).filter(|d| *d != n));
    }
    assert_eq!(circle(&nodes), None, "an import circle");
}

#[test]
fn the_rooms_of_the_pipeline_import_only_along_their_arrows() {
    let sources = sources();
    let graph = graph(&sources);
    let rooms: BTreeMap<&str, &[&str]> = ROOMS.iter().copied().collect();
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for (module, deps) in &graph {
        let Some(room) = room_of(module) else {
            continue;
        };
        seen.insert(room);
        let Some(may) = rooms.get(room) else {
            wrong.push(format!(
                "{module} is in no room: {room} is not one of {ROOMS:?}"
            ));
            continue;
        };
        for d in deps {
            match room_of(d) {
                Some(r) if r != room && !may.contains(&r) => {
                    wrong.push(format!("{module} ({room}) imports {d} ({r})"))
                }
                None if d == "pipeline" => wrong.push(format!("{module} imports pipeline itself")),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "imports across rooms: {wrong:#?}");
    assert_eq!(
        seen,
        rooms.keys().copied().collect(),
        "every room holds code"
    );
    let pipeline = &sources["pipeline"].code;
    assert!(
        !pipeline.contains("fn ") && !pipeline.contains("struct "),
        "pipeline/mod.rs declares the rooms and holds no code of its own"
    );
}

#[test]
fn the_binary_uses_commands_reports_and_the_model_and_storage_types_only() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let files = read_tree(&bin);
    assert!(files.len() >= 3, "the binary's source was found");
    let library = sources();
    let modules: BTreeSet<&str> = library.keys().map(String::as_str).collect();
    let mut wrong = Vec::new();
    for (file, m) in &files {
        for d in imports(&m.code, "regsweep", None, &modules) {
            let top = d.split("::").next().unwrap();
            if !BINARY_MAY_USE.contains(&top) {
                wrong.push(format!(
                    "src/bin/{}.rs uses regsweep::{d}",
                    file.replace("::", "/")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the binary reaches past commands: {wrong:#?}"
    );
}

/// The methods trait `name` declares in `code`, by name.
fn trait_methods(code: &str, name: &str) -> Vec<String> {
    let start = code
        .find(&format!("pub trait {name}:"))
        .unwrap_or_else(|| panic!("the storage seam declares trait {name}"));
    let body = &code[start..];
    let mut depth = 0usize;
    let mut end = body.len();
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            _ => {}
        }
    }
    let body = &body[..end];
    body.match_indices("fn ")
        .filter(|(i, _)| *i == 0 || !body.as_bytes()[i - 1].is_ascii_alphanumeric())
        .map(|(i, _)| {
            body[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn only_the_execute_room_changes_the_store_above_the_seam() {
    let sources = sources();
    let mut methods = trait_methods(&sources["storage"].code, "Storage");
    for capability in CAPABILITIES {
        methods.extend(trait_methods(
            &sources["storage::capability"].code,
            capability,
        ));
    }
    assert!(
        methods.len() > 20 && methods.iter().any(|m| m == "delete"),
        "the seam's methods were read: {methods:?}"
    );
    let changes: Vec<String> = methods
        .iter()
        .filter(|m| !READS.contains(&m.as_str()))
        .map(|m| format!(".{m}("))
        .collect();
    assert!(
        [
            ".delete(",
            ".move_object(",
            ".unhide_version(",
            ".abort_multipart("
        ]
        .iter()
        .all(|c| changes.iter().any(|x| x == c)),
        "{changes:?}"
    );
    let callers: BTreeSet<String> = sources
        .iter()
        .filter(|(m, _)| !m.starts_with("storage"))
        .filter(|(_, s)| changes.iter().any(|c| s.code.contains(c.as_str())))
        .map(|(m, _)| m.clone())
        .collect();
    let outside: Vec<&String> = callers
        .iter()
        .filter(|m| room_of(m) != Some("execute"))
        .collect();
    assert!(
        outside.is_empty(),
        "changes the store outside pipeline::execute ({changes:?}): {outside:?}"
    );
    assert!(
        callers.contains("pipeline::execute::sweep"),
        "the sweep was seen deleting: {callers:?}"
    );
}

#[test]
fn the_imports_of_a_module_are_read_from_use_groups_and_paths() {
    let modules = BTreeSet::from([
        "model::digest",
        "model::text",
        "pipeline::execute::sweep",
        "report",
        "storage::gcs",
        "storage::gcs::auth",
        "storage::gcs::batch",
        "storage::http",
    ]);
    let code = "use crate::{model::{digest::Digest, layout}, report::Gc};\n\
                use crate::pipeline::execute::sweep::{self, Deleted};\n\
                let x = crate::model::text::thousands(1);\n\
                use super::http::Http; let y = my_crate::other::f();\n";
    let found: Vec<String> = imports(code, "crate", Some("storage::gcs"), &modules)
        .into_iter()
        .collect();
    // `model::layout` is not a module here, so it counts as the layer's own; `super::` from
    // `storage/gcs/mod.rs` is `storage`.
    assert_eq!(
        found,
        [
            "model",
            "model::digest",
            "model::text",
            "pipeline::execute::sweep",
            "report",
            "storage::http"
        ]
    );
    // From a file that is not a folder's own, `super::` is its folder.
    let found = imports(
        "use super::{auth, call};",
        "crate",
        Some("storage::gcs::batch"),
        &modules,
    );
    assert_eq!(
        found,
        BTreeSet::from(["storage::gcs".to_owned(), "storage::gcs::auth".to_owned()])
    );
    assert_eq!(room_of("pipeline::execute::sweep"), Some("execute"));
    assert_eq!(node_of("storage::gcs::batch"), "storage::gcs");
}

#[test]
fn no_file_is_over_900_lines_and_no_folder_holds_more_than_12_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    let mut crowded = Vec::new();
    let mut stack = vec![src.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        let mut here = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                here += 1;
                files += 1;
                let lines = std::fs::read_to_string(&p).unwrap().lines().count();
                if lines > 900 {
                    long.push(format!("{} ({lines} lines)", p.display()));
                }
            }
        }
        if here > 12 {
            crowded.push(format!("{} ({here} files)", dir.display()));
        }
    }
    assert!(files > 80, "the source was found ({files} files)");
    assert!(long.is_empty(), "split these by idea: {long:#?}");
    assert!(crowded.is_empty(), "give these folders rooms: {crowded:#?}");
}
