//! `export`: the run's tables as Parquet, and gc's plan as portable SQL over them
//! (`plan.sql`), for an operator who already runs DuckDB, Spark, Athena or Trino, and for
//! stores whose mark is better done by an engine that spills to disk.
//!
//! The tables are what the analysis read (the walk and the catalog, through the manifest cache and
//! an `--inventory` alike); the judgement is left to the SQL: which manifests each repository's
//! revisions and tags reach (following list and index entries only where the repository links
//! them, as [`crate::pipeline::collect::mark`] does), what is left unmarked past the grace cutoff, which
//! links and uploads go with it, and which repositories are left empty. Run in any of those engines
//! it gives the items of `gc`'s own plan (without `-m`), which the analysis also computed here, so
//! the summary says how many to expect.

use crate::commands::outcome::{Error, Outcome};
use crate::commands::{CacheDir, Store};
use crate::model::digest::{AliasDigest, Digest};
use crate::model::manifest::Aliased;
use crate::model::progress::Progress;
use crate::pipeline::analysis::{self, Analysis, GcOptions};
use crate::pipeline::collect::AnalysisError;
use crate::pipeline::collect::catalog::State;
use crate::report::tables::{Column, Table};
use crate::storage::Storage;
use std::collections::HashMap;
use std::path::Path;

/// The portable SQL of gc's plan over the exported tables.
pub const PLAN_SQL: &str = include_str!("plan.sql");

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    pub storage: String,
    pub dir: String,
    /// Rows per table, in the order written.
    pub tables: Vec<(String, u64)>,
    /// The items gc's own plan holds: what `plan.sql` returns.
    pub plan_items: u64,
    pub grace_cutoff: i64,
}

impl crate::report::WriteJson for Exported {}

impl Exported {
    pub fn write_human(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Exported {} to {}:", self.storage, self.dir)?;
        for (name, rows) in &self.tables {
            writeln!(
                out,
                "  {name:<13} {:>12} rows  {name}.parquet",
                crate::model::text::thousands(*rows)
            )?;
        }
        writeln!(
            out,
            "plan.sql gives gc's plan (without -m) over them: {} items at this run's grace cutoff.",
            crate::model::text::thousands(self.plan_items)
        )
    }
}

/// Reads the store, writes the tables and `plan.sql` into `dir` (which must exist and be empty).
pub fn export(
    storage: &dyn Storage,
    dir: &Path,
    options: &GcOptions,
    progress: &Progress,
    cache: Option<&crate::pipeline::collect::manifest_cache::ManifestCache>,
) -> Result<Exported, ExportError> {
    let options = GcOptions {
        delete_untagged: false,
        ..*options
    };
    let a = analysis::analyse_keeping_references(storage, &options, progress, cache)?;
    let tables = tables(&a, storage, &options);
    for t in &tables {
        t.write(dir).map_err(|e| ExportError::Write {
            path: dir
                .join(format!("{}.parquet", t.name))
                .display()
                .to_string(),
            message: e.to_string(),
        })?;
    }
    let sql = dir.join("plan.sql");
    std::fs::write(&sql, PLAN_SQL).map_err(|e| ExportError::Write {
        path: sql.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(Exported {
        storage: storage.describe(),
        dir: dir.display().to_string(),
        tables: tables
            .iter()
            .map(|t| (t.name.to_owned(), t.rows() as u64))
            .collect(),
        plan_items: a.plan.items.len() as u64,
        grace_cutoff: options.grace_cutoff(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error("{path}: {message}")]
    Write { path: String, message: String },
}

fn text(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

fn tables(a: &Analysis, storage: &dyn Storage, options: &GcOptions) -> Vec<Table> {
    let inv = &a.inventory;
    let (mut digest, mut size, mut modified) = (Vec::new(), Vec::new(), Vec::new());
    for id in 0..inv.blobs.len() as u32 {
        if inv.no_data.contains(id) {
            continue;
        }
        digest.push(text(inv.blobs.digest(id).to_string()));
        size.push(Some(inv.blobs.size(id) as i64));
        modified.push(inv.blobs.known_modified(id));
    }
    let blobs = Table {
        name: "blobs",
        columns: vec![
            ("digest", Column::Text(digest)),
            ("size", Column::Number(size)),
            ("modified", Column::Number(modified)),
        ],
    };

    // A reference by an alias (sha512) stands for the sha256 digest any repository's alias link
    // gives it: the table has no repository column, so it keeps what any of them would.
    let mut aliases: HashMap<&AliasDigest, Vec<Digest>> = HashMap::new();
    for r in &inv.repositories {
        for (al, d) in &r.aliases {
            aliases.entry(al).or_default().push(*d);
        }
    }
    let (mut manifest, mut referenced, mut kind) = (Vec::new(), Vec::new(), Vec::new());
    for (id, _) in a.catalog.iter() {
        let Some(refs) = a.catalog.refs(id) else {
            continue;
        };
        let m = inv.blobs.digest(id).to_string();
        let mut push = |d: String, k: &str| {
            manifest.push(text(m.clone()));
            referenced.push(text(d));
            kind.push(text(k));
        };
        for &b in refs.blobs {
            push(inv.blobs.digest(b).to_string(), "blob");
        }
        for (d, _) in refs.absent {
            push(d.to_string(), "blob");
        }
        for c in refs.children {
            push(c.to_string(), "entry");
        }
        for c in refs.undeclared {
            let not_manifest = a.catalog.state(&inv.blobs, c) == Some(State::NotManifest);
            push(
                c.to_string(),
                if not_manifest { "entry_data" } else { "entry" },
            );
        }
        if let Some(s) = refs.subject {
            push(s.to_string(), "subject");
        }
        for al in refs.aliased {
            let k = match al {
                Aliased::Blob(_) | Aliased::Foreign(_) => "blob",
                Aliased::Child(..) => "entry",
                Aliased::Subject(_) => "subject",
            };
            match aliases.get(al.alias()) {
                Some(ds) => ds.iter().for_each(|d| push(d.to_string(), k)),
                None => push(al.alias().to_string(), k),
            }
        }
    }
    let refs = Table {
        name: "refs",
        columns: vec![
            ("manifest", Column::Text(manifest)),
            ("referenced", Column::Text(referenced)),
            ("kind", Column::Text(kind)),
        ],
    };

    let (mut repo, mut digest, mut kind, mut dangling) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut t_repo, mut t_tag, mut t_digest) = (Vec::new(), Vec::new(), Vec::new());
    let (mut u_repo, mut u_id, mut u_size, mut u_modified) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut r_name, mut r_newest) = (Vec::new(), Vec::new());
    for r in &inv.repositories {
        let mut link = |d: String, k: &str, gone: bool| {
            repo.push(text(&r.name));
            digest.push(text(d));
            kind.push(text(k));
            dangling.push(gone);
        };
        for d in r.revisions.digests(&inv.blobs) {
            link(d.to_string(), "revision", inv.blobs.id(&d).is_none());
        }
        for &id in &r.layer_links {
            link(inv.blobs.digest(id).to_string(), "layer", false);
        }
        for d in &r.dangling_layer_links {
            link(d.to_string(), "layer", true);
        }
        for t in &r.tags {
            t_repo.push(text(&r.name));
            t_tag.push(text(t.name.as_str()));
            t_digest.push(t.current.map(|d| d.to_string()));
        }
        for u in &r.uploads {
            u_repo.push(text(&r.name));
            u_id.push(text(&u.id));
            u_size.push(Some(u.size as i64));
            u_modified.push(Some(u.modified));
        }
        r_name.push(text(&r.name));
        r_newest.push(r.layer_links_newest);
    }
    let (mut m_key, mut m_id, mut m_size, mut m_initiated) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for m in &a.multipart {
        m_key.push(text(&m.key));
        m_id.push(text(&m.upload_id));
        m_size.push(Some(m.size as i64));
        m_initiated.push(m.initiated.map(crate::model::time::unix_seconds));
    }
    vec![
        blobs,
        refs,
        Table {
            name: "links",
            columns: vec![
                ("repository", Column::Text(repo)),
                ("digest", Column::Text(digest)),
                ("kind", Column::Text(kind)),
                ("dangling", Column::Flag(dangling)),
            ],
        },
        Table {
            name: "tags",
            columns: vec![
                ("repository", Column::Text(t_repo)),
                ("tag", Column::Text(t_tag)),
                ("digest", Column::Text(t_digest)),
            ],
        },
        Table {
            name: "uploads",
            columns: vec![
                ("repository", Column::Text(u_repo)),
                ("id", Column::Text(u_id)),
                ("size", Column::Number(u_size)),
                ("modified", Column::Number(u_modified)),
            ],
        },
        Table {
            name: "repositories",
            columns: vec![
                ("repository", Column::Text(r_name)),
                ("layer_links_newest", Column::Number(r_newest)),
            ],
        },
        Table {
            name: "multipart",
            columns: vec![
                ("object_key", Column::Text(m_key)),
                ("upload_id", Column::Text(m_id)),
                ("size", Column::Number(m_size)),
                ("initiated", Column::Number(m_initiated)),
            ],
        },
        Table {
            name: "run",
            columns: vec![
                ("store", Column::Text(vec![text(storage.identity())])),
                (
                    "grace_cutoff",
                    Column::Number(vec![Some(options.grace_cutoff())]),
                ),
                (
                    "exported",
                    Column::Text(vec![text(
                        humantime::format_rfc3339_seconds(options.now).to_string(),
                    )]),
                ),
            ],
        },
    ]
}

impl crate::report::Render for Exported {
    fn json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        crate::report::WriteJson::write_json(self, out)
    }
    fn human(
        &self,
        out: &mut dyn std::io::Write,
        _view: &crate::report::View,
    ) -> std::io::Result<()> {
        self.write_human(out)
    }
}

/// Refuses a folder that holds something (nothing is overwritten): before the store is opened.
pub fn check_folder(dir: &Path) -> Result<(), Error> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(Error::other(format!(
            "{}: the folder is not empty; export writes into an empty or new folder",
            dir.display()
        ))),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::failed(dir.display().to_string(), e)),
    }
}

/// `export`: the tables and the plan's SQL into `dir` (made when missing).
pub fn run(
    store: Store<'_>,
    dir: &Path,
    grace: std::time::Duration,
    manifests: &CacheDir,
    progress: &Progress,
) -> Result<(Exported, Outcome), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::failed(format!("creating {}", dir.display()), e))?;
    let options = GcOptions {
        delete_untagged: false,
        grace,
        now: std::time::SystemTime::now(),
    };
    let manifests = manifests.open();
    let exported = match export(store.storage, dir, &options, progress, manifests.as_ref()) {
        Err(ExportError::Analysis(e)) => return Err(store.analysis(e)),
        other => other.map_err(Error::other)?,
    };
    if let Some(m) = manifests {
        m.finish();
    }
    Ok((exported, Outcome::Done))
}
