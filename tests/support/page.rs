//! A page opened in Debian's chromium by playwright-core (tests/support/page_probe.js): the requests
//! it made, its script errors, the numbers in its DOM, and what its table's sorting and filtering did.

use std::path::Path;
use std::process::Command;

/// Where `.ci/run` installs playwright-core (from `.ci/npm/package-lock.json`).
pub fn playwright_core() -> std::path::PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-npm/node_modules/playwright-core");
    assert!(
        dir.join("package.json").is_file(),
        "{} is missing: `bash .ci/run` installs it (npm ci --prefix target/ci-npm)",
        dir.display()
    );
    dir
}

/// Opens `page`, writes a screenshot of its first screen to `screenshot`, types `filter` into its
/// filter box; what the probe saw, as JSON.
pub fn probe(page: &Path, screenshot: &Path, filter: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/page_probe.js");
    let out = super::run(
        Command::new("node")
            .arg(script)
            .arg(playwright_core())
            .arg(page)
            .arg(screenshot)
            .arg(filter),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("the probe printed no JSON ({e}):\n{out}"))
}
