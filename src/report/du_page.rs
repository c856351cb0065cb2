//! `du --html FILE`: the du report as one self-contained page. Everything is drawn here, when the
//! page is written: the treemap's squarified layout ([`super::treemap`]), the tables, the history's
//! sparklines. Its style and script are inline, and its Content-Security-Policy allows no request at
//! all, so the page works offline and nothing it shows leaves the machine that opens it. The script
//! only sorts and filters the table; without it, every number is still there.
//!
//! Each number is in the page twice: as text for people (`1.5 GiB`) and exactly, as the
//! `data-bytes` (or `data-value`) of its element, equal to the field of `du --json` it comes from.

use super::treemap::{Rect, squarify};
use crate::model::text::{human_bytes, thousands};
use crate::report::du::{DuReport, RepoUsage};
use crate::report::du_history::{Growth, per_day};
use std::fmt::Write as _;
use std::io::{self, Write};

/// The treemap's drawing size, in SVG units (it scales to the page's width).
const MAP_W: f64 = 1200.0;
const MAP_H: f64 = 560.0;
/// Repositories drawn as tiles of their own; the rest share one tile.
const MAP_TILES: usize = 300;

const STYLE: &str = include_str!("du_page.css");
const SCRIPT: &str = include_str!("du_page.js");

/// Text safe inside HTML elements and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A size as an element whose text is for people and whose `data-bytes` is exact.
fn bytes(tag: &str, class: &str, n: u64) -> String {
    format!(
        "<{tag} class=\"{class}\" data-bytes=\"{n}\" title=\"{} bytes\">{}</{tag}>",
        thousands(n),
        human_bytes(n)
    )
}

fn signed_bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", human_bytes(n.unsigned_abs()))
}

/// The treemap: one tile per repository with bytes, its area its bytes; the darker part at its foot
/// is its exclusive bytes, the rest what it shares.
fn treemap(repos: &[RepoUsage]) -> String {
    let mut order: Vec<usize> = (0..repos.len()).filter(|i| repos[*i].bytes > 0).collect();
    order.sort_by(|a, b| {
        (repos[*b].bytes, &repos[*a].name).cmp(&(repos[*a].bytes, &repos[*b].name))
    });
    let rest: Vec<usize> = order.split_off(order.len().min(MAP_TILES));
    // A repository each, then the rest as one tile (`None`), largest first.
    let mut tiles: Vec<(Option<usize>, u64)> =
        order.iter().map(|i| (Some(*i), repos[*i].bytes)).collect();
    let rest_bytes: u64 = rest.iter().map(|i| repos[*i].bytes).sum();
    if rest_bytes > 0 {
        let at = tiles.partition_point(|(_, b)| *b >= rest_bytes);
        tiles.insert(at, (None, rest_bytes));
    }
    let mut svg = format!(
        "<svg id=\"treemap\" viewBox=\"0 0 {MAP_W} {MAP_H}\" role=\"img\" \
         aria-label=\"Repositories sized by the bytes their tags reach\">"
    );
    if tiles.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" class=\"empty\">no repository holds any bytes</text>",
            MAP_W / 2.0,
            MAP_H / 2.0
        );
    }
    let sizes: Vec<f64> = tiles.iter().map(|(_, b)| *b as f64).collect();
    let bounds = Rect {
        x: 0.0,
        y: 0.0,
        w: MAP_W,
        h: MAP_H,
    };
    for ((index, _), Rect { x, y, w, h }) in tiles.iter().zip(squarify(&sizes, bounds)) {
        let (label, bytes_n, exclusive, attrs) = match *index {
            Some(i) => {
                let r = &repos[i];
                let attrs = format!(
                    "data-repo=\"{}\" data-bytes=\"{}\" data-exclusive-bytes=\"{}\" data-detail=\"repo-{i}\"",
                    esc(&r.name),
                    r.bytes,
                    r.exclusive_bytes
                );
                (r.name.clone(), r.bytes, r.exclusive_bytes, attrs)
            }
            None => {
                let exclusive: u64 = rest.iter().map(|i| repos[*i].exclusive_bytes).sum();
                let label = format!("{} more repositories", rest.len());
                let attrs = format!("data-rest=\"{}\" data-bytes=\"{rest_bytes}\"", rest.len());
                (label, rest_bytes, exclusive, attrs)
            }
        };
        let eh = if bytes_n == 0 {
            0.0
        } else {
            h * exclusive as f64 / bytes_n as f64
        };
        let _ = write!(
            svg,
            "<g class=\"tile\" {attrs}><title>{}: {} ({} exclusive, {} shared)</title>\
             <rect class=\"shared\" x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\"/>\
             <rect class=\"exclusive\" x=\"{x:.2}\" y=\"{:.2}\" width=\"{w:.2}\" height=\"{eh:.2}\"/>",
            esc(&label),
            human_bytes(bytes_n),
            human_bytes(exclusive),
            human_bytes(bytes_n - exclusive),
            y + h - eh,
        );
        if w > 60.0 && h > 30.0 {
            // Clipped to the tile: a long name never spills into the next one.
            let chars = ((w - 10.0) / 7.5) as usize;
            let shown: String = if label.chars().count() > chars {
                let mut s: String = label.chars().take(chars.saturating_sub(1)).collect();
                s.push('…');
                s
            } else {
                label.clone()
            };
            let _ = write!(
                svg,
                "<text x=\"{:.2}\" y=\"{:.2}\">{}</text><text class=\"size\" x=\"{:.2}\" y=\"{:.2}\">{}</text>",
                x + 5.0,
                y + 16.0,
                esc(&shown),
                x + 5.0,
                y + 30.0,
                human_bytes(bytes_n)
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

/// A small line of a repository's bytes over the recorded runs.
fn sparkline(series: &[u64]) -> String {
    let (w, h) = (80.0, 18.0);
    let max = series.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = if series.len() > 1 {
        w / (series.len() - 1) as f64
    } else {
        0.0
    };
    let points: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                h - 1.0 - (h - 2.0) * *v as f64 / max
            )
        })
        .collect();
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" aria-hidden=\"true\">\
         <polyline points=\"{}\"/></svg>",
        points.join(" ")
    )
}

fn summary(report: &DuReport, out: &mut String) {
    let rc = &report.reclaimable;
    let _ = write!(
        out,
        "<section id=\"summary\" class=\"cards\">\
         <div class=\"card\"><span class=\"label\">stored</span>{}<span class=\"sub\">in <span id=\"blobs\" data-value=\"{}\">{}</span> blobs</span></div>\
         <div class=\"card\"><span class=\"label\">repositories</span><span id=\"repositories\" class=\"big\" data-value=\"{}\">{}</span></div>\
         <div class=\"card\"><span class=\"label\">gc -m would free</span>{}<span class=\"sub\">at --grace 0s</span></div>",
        bytes("span", "big total", report.total_bytes),
        report.blobs,
        thousands(report.blobs),
        report.repositories.len(),
        thousands(report.repositories.len() as u64),
        bytes(
            "span",
            "big freeable",
            rc.unreferenced_bytes + rc.untagged_bytes + rc.uploads_bytes + rc.multipart_bytes
        ),
    );
    if let Some(g) = &report.history {
        fill_card(g, out);
    }
    out.push_str("</section>");
}

fn fill_card(g: &Growth, out: &mut String) {
    let rate = g
        .total
        .recent_bytes_per_day
        .map_or("no rate yet".into(), per_day);
    let (head, sub) = match &g.fill {
        Some(f) => match (&f.date, f.days) {
            (Some(date), Some(days)) => (
                format!(
                    "<span id=\"fill-date\" class=\"big\" data-value=\"{}\">{}</span>",
                    esc(date),
                    esc(&date[..10.min(date.len())])
                ),
                format!(
                    "in <span data-value=\"{days}\">{days:.1}</span> days at {rate}; {} left of {}",
                    bytes("span", "available", f.available_bytes),
                    bytes("span", "capacity", f.capacity_bytes)
                ),
            ),
            _ => (
                "<span id=\"fill-date\" class=\"big\" data-value=\"\">not filling</span>".into(),
                format!(
                    "{rate} over the recent runs; {} left of {}",
                    bytes("span", "available", f.available_bytes),
                    bytes("span", "capacity", f.capacity_bytes)
                ),
            ),
        },
        None => (
            "<span id=\"fill-date\" class=\"big\" data-value=\"\">unknown</span>".into(),
            format!("{rate}; give --capacity for a fill date"),
        ),
    };
    let _ = write!(
        out,
        "<div class=\"card\" id=\"fill\"><span class=\"label\">full on</span>{head}<span class=\"sub\">{sub}</span></div>"
    );
}

fn reclaimable(report: &DuReport, out: &mut String) {
    let rc = &report.reclaimable;
    let rows = [
        (
            "unreferenced",
            "blobs nothing references",
            "gc",
            rc.unreferenced_bytes,
        ),
        (
            "untagged",
            "blobs only untagged manifests reach",
            "gc -m, beyond gc",
            rc.untagged_bytes,
        ),
        (
            "uploads",
            "what _uploads folders hold",
            "gc",
            rc.uploads_bytes,
        ),
        (
            "multipart",
            "parts of incomplete S3 multipart uploads",
            "gc",
            rc.multipart_bytes,
        ),
    ];
    let _ = write!(
        out,
        "<section id=\"reclaimable\"><h2>What collecting would free</h2>\
         <p>At <code>--grace {}s</code>: what is unreachable now, however recent. \
         <code>gc</code>'s default grace of two hours holds back what was written since; its dry run says how much.</p>\
         <table><thead><tr><th>kind</th><th>what</th><th>freed by</th><th class=\"num\">bytes</th></tr></thead><tbody>",
        rc.grace_seconds
    );
    for (kind, what, by, n) in rows {
        let _ = write!(
            out,
            "<tr data-kind=\"{kind}\"><td>{kind}</td><td>{what}</td><td><code>{by}</code></td>{}</tr>",
            bytes("td", "num", n)
        );
    }
    out.push_str("</tbody></table></section>");
}

/// `--bucket`: every byte under the store's root, by category, as the human table gives it.
fn bucket(report: &DuReport, out: &mut String) {
    let Some(b) = &report.bucket else {
        return;
    };
    let r = &b.registry;
    let mut rows = vec![
        ("live", "what the tags reach", r.live_bytes),
        ("unreferenced", "gc frees it", r.unreferenced_bytes),
        ("untagged", "gc -m frees it", r.untagged_bytes),
        ("uploads", "gc frees abandoned ones", r.uploads_bytes),
        ("links", "links and tags: the registry's own", r.links_bytes),
    ];
    if let Some(v) = &b.noncurrent_versions {
        rows.push((
            "noncurrent_versions",
            "older versions: a lifecycle rule frees them",
            v.bytes,
        ));
    }
    if let Some(m) = &b.multipart_uploads {
        rows.push((
            "multipart_uploads",
            "parts of incomplete multipart uploads: gc aborts them",
            m.bytes,
        ));
    }
    rows.push((
        "trash",
        "regsweep's trash: purged when its runs expire",
        b.trash.bytes,
    ));
    rows.push((
        "outside_layout",
        "keys outside the registry's layout: never touched",
        b.outside_layout.bytes,
    ));
    let _ = write!(
        out,
        "<section id=\"bucket\"><h2>Every byte under the store's root</h2>\
         <p>Each byte in one category; they add up to {} (every version and part the store lists).</p>\
         <table><thead><tr><th>category</th><th>what frees it</th><th class=\"num\">bytes</th></tr></thead><tbody>",
        esc(&human_bytes(b.total_bytes))
    );
    for (category, what, n) in rows {
        let _ = write!(
            out,
            "<tr data-category=\"{category}\"><td>{category}</td><td>{}</td>{}</tr>",
            esc(what),
            bytes("td", "num", n)
        );
    }
    let _ = write!(
        out,
        "</tbody><tfoot><tr data-category=\"total\"><td>total</td><td></td>{}</tr></tfoot></table>",
        bytes("td", "num", b.total_bytes)
    );
    if !b.outside_layout.examples.is_empty() {
        out.push_str("<p>Outside the layout, for example:</p><ul class=\"outside\">");
        for e in &b.outside_layout.examples {
            let _ = write!(out, "<li><code>{}</code></li>", esc(e));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

fn repo_table(report: &DuReport, out: &mut String) {
    let growth = report.history.as_ref();
    // By name, once: a lookup per row would be quadratic in the repositories.
    let grown: std::collections::HashMap<&str, &crate::report::du_history::RepoGrowth> = growth
        .iter()
        .flat_map(|g| &g.repositories)
        .map(|x| (x.name.as_str(), x))
        .collect();
    let _ = write!(
        out,
        "<section id=\"table\"><h2>Repositories</h2>\
         <p class=\"controls\"><input id=\"filter\" type=\"search\" placeholder=\"filter by name\" aria-label=\"filter repositories by name\"> \
         <span id=\"shown\">{n} of {n} shown</span> · click a column to sort</p>\
         <table id=\"repos\"><thead><tr>\
         <th data-type=\"text\" aria-sort=\"none\">repository</th>\
         <th data-type=\"num\" class=\"num\" aria-sort=\"none\">tags</th>\
         <th data-type=\"num\" class=\"num\" aria-sort=\"none\">manifests</th>\
         <th data-type=\"num\" class=\"num\" aria-sort=\"none\">bytes</th>\
         <th data-type=\"num\" class=\"num\" aria-sort=\"descending\">exclusive</th>\
         <th data-type=\"num\" class=\"num\" aria-sort=\"none\">shared</th>{}\
         </tr></thead><tbody>",
        if growth.is_some() {
            "<th data-type=\"num\" class=\"num\" aria-sort=\"none\">growth</th><th data-type=\"num\" class=\"num\" aria-sort=\"none\">per day</th><th>over the runs</th>"
        } else {
            ""
        },
        n = report.repositories.len()
    );
    for (i, r) in report.repositories.iter().enumerate() {
        let _ = write!(
            out,
            "<tr data-repo=\"{name}\"><td data-value=\"{name}\"><a href=\"#repo-{i}\">{name}</a></td>\
             <td class=\"num tags\" data-value=\"{}\">{}</td><td class=\"num manifests\" data-value=\"{}\">{}</td>\
             {}{}{}",
            r.tags,
            thousands(r.tags),
            r.manifests,
            thousands(r.manifests),
            cell("bytes", r.bytes),
            cell("exclusive", r.exclusive_bytes),
            cell("shared", r.shared_bytes),
            name = esc(&r.name),
        );
        if growth.is_some() {
            match grown.get(r.name.as_str()) {
                Some(x) => {
                    let rate = x.bytes.recent_bytes_per_day;
                    let _ = write!(
                        out,
                        "<td class=\"num growth\" data-value=\"{}\">{}</td><td class=\"num rate\" data-value=\"{}\">{}</td><td>{}</td>",
                        x.bytes.change_bytes,
                        signed_bytes(x.bytes.change_bytes),
                        rate.unwrap_or(0.0),
                        rate.map_or("-".into(), per_day),
                        sparkline(&x.series)
                    );
                }
                None => {
                    out.push_str("<td data-value=\"0\"></td><td data-value=\"0\"></td><td></td>")
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");
}

/// A table cell for a size: its text for people, its `data-value` (for sorting) and `data-bytes`.
fn cell(class: &str, n: u64) -> String {
    format!(
        "<td class=\"num {class}\" data-value=\"{n}\" data-bytes=\"{n}\" title=\"{} bytes\">{}</td>",
        thousands(n),
        human_bytes(n)
    )
}

fn details(report: &DuReport, out: &mut String) {
    out.push_str(
        "<section id=\"details\"><h2>Per repository</h2>\
         <p>Each tag with the bytes its image reaches, and the largest blobs the repository's tags reach, \
         with the other repositories whose tags reach them too.</p>",
    );
    for (i, r) in report.repositories.iter().enumerate() {
        let _ = write!(
            out,
            "<details id=\"repo-{i}\" class=\"repo\" data-repo=\"{}\"><summary><strong>{}</strong> {} \
             ({} exclusive)</summary><div class=\"cols\"><table class=\"tags\"><thead><tr><th>tag</th>\
             <th>manifest</th><th class=\"num\">bytes</th></tr></thead><tbody>",
            esc(&r.name),
            esc(&r.name),
            bytes("span", "bytes", r.bytes),
            human_bytes(r.exclusive_bytes),
        );
        for t in &r.tag_sizes {
            let digest = t.digest.as_deref().unwrap_or("(bad link)");
            let _ = write!(
                out,
                "<tr class=\"tag\" data-tag=\"{}\" data-bytes=\"{}\"><td>{}</td><td><code title=\"{}\">{}</code></td><td class=\"num\">{}</td></tr>",
                esc(&t.name),
                t.bytes,
                esc(&t.name),
                esc(digest),
                esc(&digest[..digest.len().min(19)]),
                human_bytes(t.bytes)
            );
        }
        if r.tag_sizes.is_empty() {
            out.push_str("<tr><td colspan=\"3\">no tags</td></tr>");
        }
        out.push_str(
            "</tbody></table><table class=\"blobs\"><thead><tr><th>largest blobs</th>\
             <th class=\"num\">bytes</th><th>also reached from</th></tr></thead><tbody>",
        );
        for b in &r.largest_blobs {
            let mut with = b
                .shared_with
                .iter()
                .map(|n| esc(n))
                .collect::<Vec<_>>()
                .join(", ");
            let more = b.shared_by as usize - b.shared_with.len();
            if more > 0 {
                let _ = write!(with, " and {more} more");
            }
            if b.shared_by == 0 {
                with = "<em>only here</em>".into();
            }
            let _ = write!(
                out,
                "<tr class=\"blob\" data-digest=\"{}\" data-bytes=\"{}\" data-shared-by=\"{}\"><td><code title=\"{}\">{}</code></td>\
                 <td class=\"num\">{}</td><td>{with}</td></tr>",
                esc(&b.digest),
                b.bytes,
                b.shared_by,
                esc(&b.digest),
                esc(&b.digest[..b.digest.len().min(19)]),
                human_bytes(b.bytes)
            );
        }
        out.push_str("</tbody></table></div></details>");
    }
    out.push_str("</section>");
}

/// Writes the page.
pub fn write_page(report: &DuReport, out: &mut dyn Write) -> io::Result<()> {
    let mut page = String::with_capacity(64 * 1024 + report.repositories.len() * 2048);
    let title = format!("regsweep du: {}", report.storage);
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\
         <header><h1>Where the bytes are: <code id=\"storage\">{}</code></h1>\
         <p>Measured <time id=\"measured\" datetime=\"{t}\">{t}</time> by regsweep {}. This page makes no request; \
         every number is also in <code>regsweep du --json</code>.</p></header>",
        esc(&title),
        esc(&report.storage),
        env!("CARGO_PKG_VERSION"),
        t = esc(&report.time),
    );
    if let Some(o) = &report.database_in_use {
        let _ = write!(page, "<p class=\"warning\">{}</p>", esc(&o.warning()));
    }
    summary(report, &mut page);
    page.push_str(
        "<section id=\"map\"><h2>Repositories by size</h2><p class=\"legend\">\
         Each tile's area is the bytes a repository's tags reach. <span class=\"key exclusive\"></span> exclusive: \
         only its tags reach them (what deleting it and <code>gc -m</code> would free). \
         <span class=\"key shared\"></span> shared with other repositories, so tiles add up to more than the store.</p>",
    );
    page.push_str(&treemap(&report.repositories));
    page.push_str("</section>");
    repo_table(report, &mut page);
    reclaimable(report, &mut page);
    bucket(report, &mut page);
    details(report, &mut page);
    if report.problems > 0 {
        let _ = write!(
            page,
            "<p class=\"warning\" id=\"problems\" data-value=\"{}\">{} problems met on the way; sizes may be short where they are. \
             <code>regsweep audit</code> lists them.</p>",
            report.problems,
            thousands(report.problems)
        );
    }
    let _ = writeln!(page, "<script>{SCRIPT}</script></body></html>");
    out.write_all(page.as_bytes())
}
