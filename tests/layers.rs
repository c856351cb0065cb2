//! The library's layers, checked from its source: every `crate::` path in a module points to its own
//! layer or one below, no two modules import each other (directly or around a circle), and exactly one
//! module above the storage seam deletes, removes folders or aborts uploads.
//!
//! A layer is a directory of `src/`, bottom up (the same list as `src/lib.rs` gives); a module is a
//! file in it (`mod.rs` is its directory's own module), and the storage layer counts as one module,
//! the seam. A file outside the layers fails the test, so that a new one is placed on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: &[&str] = &["model", "storage", "pipeline", "report", "commands"];

/// The library's source without comments and test modules, by module (`pipeline::execute::sweep`, `report`,
/// `storage`). The binary (`src/bin/`) sits on top and reaches the library as `regsweep::`.
fn sources() -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p != src.join("bin") {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") || p == src.join("lib.rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            if parts[0] == "storage" {
                parts.truncate(1);
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            let entry = out.entry(parts.join("::")).or_default();
            entry.push_str(&code.join("\n"));
            entry.push('\n');
        }
    }
    out
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

/// The modules `code` names through `crate::` (also inside `use crate::{a::b, c::{d, e}}`), as
/// `sources` keys them: `layer::module` where that module exists, else the layer's own module.
fn imports(code: &str, modules: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let mut at = i + "crate::".len();
        for path in tree(code.as_bytes(), &mut at) {
            let sub = path.get(1).map(|s| format!("{}::{s}", path[0]));
            match sub.filter(|m| modules.contains(m.as_str())) {
                Some(m) => out.insert(m),
                None => out.insert(path[0].clone()),
            };
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap();
    LAYERS.iter().position(|l| *l == top)
}

#[test]
fn every_import_points_to_its_own_layer_or_below_and_none_goes_round_a_circle() {
    let sources = sources();
    assert!(
        sources.len() > 20,
        "the source was found: {:?}",
        sources.keys()
    );
    let modules: BTreeSet<&str> = sources.keys().map(String::as_str).collect();
    let mut graph: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, code) in &sources {
        let own = layer_of(module).unwrap_or_else(|| {
            panic!("src/{module} is in no layer: put it in a layer's directory")
        });
        let deps: BTreeSet<String> = imports(code, &modules)
            .into_iter()
            .filter(|d| d != module && sources.contains_key(d))
            .collect();
        for d in &deps {
            let theirs = layer_of(d).expect("every module has a layer");
            if theirs > own {
                upward.push(format!(
                    "{module} ({}) imports {d} ({})",
                    LAYERS[own], LAYERS[theirs]
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
    let modules = BTreeSet::from([
        "model::digest",
        "model::text",
        "pipeline::execute::sweep",
        "report",
    ]);
    let code = "use crate::{model::{digest::Digest, layout}, report::Gc};\n\
                use crate::pipeline::execute::sweep::{self, Deleted};\n\
                let x = crate::model::text::thousands(1);\n";
    let found: Vec<String> = imports(code, &modules).into_iter().collect();
    // `model::layout` is not a module here, so it counts as the layer's own.
    assert_eq!(
        found,
        [
            "model",
            "model::digest",
            "model::text",
            "pipeline::execute::sweep",
            "report"
        ]
    );
}

#[test]
fn only_the_sweep_deletes_removes_folders_or_aborts_uploads_above_the_seam() {
    let calls = [
        ".delete(",
        ".remove_empty_folders(",
        ".remove_folder_if_empty(",
        ".abort_multipart(",
        ".delete_version(",
        ".hide_version(",
    ];
    let sources = sources();
    let callers: BTreeSet<&str> = sources
        .iter()
        .filter(|(m, _)| m.as_str() != "storage")
        .filter(|(_, code)| calls.iter().any(|c| code.contains(c)))
        .map(|(m, _)| m.as_str())
        .collect();
    assert_eq!(callers, BTreeSet::from(["pipeline::execute::sweep"]));
}
