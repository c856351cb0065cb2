//! Pulls, from the registry's own records: its logs (2.8 and 3.x; logrus text and JSON
//! formatters; the combined access log; rotated files, gzipped or not; `journalctl -o json` and
//! `-o export`) and its notification events (the JSON envelopes an endpoint receives, one a line).
//! A pull is a successful `GET /v2/<name>/manifests/<reference>` (a HEAD only asks) or a `pull`
//! event. A pull by tag counts for that tag; a pull by digest for that manifest and every tag on
//! it. The records' span is every timestamp read, pull or not: a log that says nothing of a tag
//! for a month covers that month.

use crate::model::digest::Digest;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Last pulls by tag and by manifest, and the span the records cover.
#[derive(Debug, Default, Clone)]
pub struct Pulls {
    by_tag: BTreeMap<(String, String), i64>,
    by_digest: BTreeMap<(String, Digest), i64>,
    span: Option<(i64, i64)>,
    /// Pulls read.
    pub pulls: u64,
}

/// A record file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PullsError {
    pub path: String,
    pub message: String,
}

impl Pulls {
    /// Counts a pull of `repo` by `tag` or `digest` at `t` (Unix seconds).
    pub fn record(&mut self, repo: &str, tag: Option<&str>, digest: Option<Digest>, t: i64) {
        if let Some(tag) = tag {
            let e = self
                .by_tag
                .entry((repo.to_owned(), tag.to_owned()))
                .or_insert(t);
            *e = (*e).max(t);
        }
        if let Some(d) = digest {
            let e = self.by_digest.entry((repo.to_owned(), d)).or_insert(t);
            *e = (*e).max(t);
        }
        self.pulls += 1;
        self.cover(t);
    }

    /// Widens the span to `t`.
    pub fn cover(&mut self, t: i64) {
        self.span = Some(match self.span {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
    }

    /// The first and last time the records saw.
    pub fn span(&self) -> Option<(i64, i64)> {
        self.span
    }

    /// The last pull of any of `tags`, or of `digest`, in `repo`.
    pub fn last(&self, repo: &str, tags: &[String], digest: Option<&Digest>) -> Option<i64> {
        let by_tag = tags
            .iter()
            .filter_map(|t| self.by_tag.get(&(repo.to_owned(), t.clone())))
            .max()
            .copied();
        let by_digest = digest.and_then(|d| self.by_digest.get(&(repo.to_owned(), *d)).copied());
        by_tag.max(by_digest)
    }

    /// Reads every file of `paths`; a file in which no line has a time is an error (a wrong file
    /// is not "no pulls").
    pub fn read(paths: &[std::path::PathBuf]) -> Result<Pulls, PullsError> {
        let mut pulls = Pulls::default();
        for path in paths {
            pulls.read_file(path)?;
        }
        Ok(pulls)
    }

    fn read_file(&mut self, path: &Path) -> Result<(), PullsError> {
        let err = |message: String| PullsError {
            path: path.display().to_string(),
            message,
        };
        let mut bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .map_err(|e| err(format!("not a gzip file: {e}")))?;
            bytes = out;
        }
        let text = String::from_utf8_lossy(&bytes);
        let mut timed = 0u64;
        for line in text.lines() {
            if self.line(line) {
                timed += 1;
            }
        }
        if timed == 0 {
            return Err(err(
                "no line has a time: not a registry log, a journal export or notification events"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Reads one line; true when it carried a time.
    fn line(&mut self, line: &str) -> bool {
        let line = line.trim();
        if let Some(message) = line.strip_prefix("MESSAGE=") {
            return self.line(message);
        }
        if line.starts_with('{') {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                return false;
            };
            if let Some(m) = v["MESSAGE"].as_str() {
                return self.line(m);
            }
            if let Some(events) = v["events"].as_array() {
                return self.events(events);
            }
            let Some(t) = v["time"].as_str().and_then(parse_time) else {
                return false;
            };
            self.cover(t);
            let method = v["http.request.method"].as_str();
            let uri = v["http.request.uri"].as_str();
            let status = v["http.response.status"].as_u64();
            if let (Some("GET"), Some(uri), Some(200..=299)) = (method, uri, status) {
                self.request(uri, t);
            }
            return true;
        }
        if let Some(t) = field(line, "time").as_deref().and_then(parse_time) {
            self.cover(t);
            if field(line, "msg").as_deref() == Some("response completed")
                && field(line, "http.request.method").as_deref() == Some("GET")
                && field(line, "http.response.status").is_some_and(|s| s.starts_with('2'))
                && let Some(uri) = field(line, "http.request.uri")
            {
                self.request(&uri, t);
            }
            return true;
        }
        self.access_line(line)
    }

    /// `127.0.0.1 - - [04/Dec/2026:07:00:00 +0000] "GET /v2/… HTTP/1.1" 200 …`
    fn access_line(&mut self, line: &str) -> bool {
        let Some((_, rest)) = line.split_once(" [") else {
            return false;
        };
        let Some((stamp, rest)) = rest.split_once("] \"") else {
            return false;
        };
        let Some(t) = parse_access_time(stamp) else {
            return false;
        };
        self.cover(t);
        let mut words = rest.split_whitespace();
        let (method, uri) = (words.next(), words.next());
        let status = rest
            .split_once("\" ")
            .and_then(|(_, s)| s.split_whitespace().next());
        if method == Some("GET")
            && status.is_some_and(|s| s.starts_with('2'))
            && let Some(uri) = uri
        {
            self.request(uri, t);
        }
        true
    }

    fn events(&mut self, events: &[serde_json::Value]) -> bool {
        let mut timed = false;
        for e in events {
            let Some(t) = e["timestamp"].as_str().and_then(parse_time) else {
                continue;
            };
            timed = true;
            self.cover(t);
            if e["action"] != "pull" {
                continue;
            }
            let target = &e["target"];
            let Some(repo) = target["repository"].as_str() else {
                continue;
            };
            let digest = target["digest"]
                .as_str()
                .and_then(|d| Digest::parse(d).ok());
            self.record(repo, target["tag"].as_str(), digest, t);
        }
        timed
    }

    /// `/v2/<name>/manifests/<reference>` (query dropped).
    fn request(&mut self, uri: &str, t: i64) {
        let path = uri.split('?').next().unwrap_or(uri);
        let Some(rest) = path.strip_prefix("/v2/") else {
            return;
        };
        let Some((repo, reference)) = rest.rsplit_once("/manifests/") else {
            return;
        };
        match Digest::parse(reference) {
            Ok(d) => self.record(repo, None, Some(d), t),
            Err(_) => self.record(repo, Some(reference), None, t),
        }
    }
}

/// A logrus text field's value: `key=value` or `key="quoted \"value\""`.
fn field(line: &str, key: &str) -> Option<String> {
    let mut at = 0;
    while let Some(found) = line[at..].find(key) {
        let start = at + found;
        at = start + key.len();
        let before_ok = start == 0 || line.as_bytes()[start - 1] == b' ';
        if !before_ok || !line[at..].starts_with('=') {
            continue;
        }
        let value = &line[at + 1..];
        if let Some(quoted) = value.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '"' => return Some(out),
                    c => out.push(c),
                }
            }
            return Some(out);
        }
        return Some(value.split(' ').next().unwrap_or("").to_owned());
    }
    None
}

/// RFC 3339 with any offset and fraction (`2026-12-04T07:00:00.123456789+01:00`).
fn parse_time(s: &str) -> Option<i64> {
    let (main, offset) = match s.len().checked_sub(6).and_then(|i| s.get(i..)) {
        Some(tail)
            if (tail.starts_with('+') || tail.starts_with('-')) && tail.as_bytes()[3] == b':' =>
        {
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            let h: i64 = tail[1..3].parse().ok()?;
            let m: i64 = tail[4..6].parse().ok()?;
            (&s[..s.len() - 6], sign * (h * 3600 + m * 60))
        }
        _ => (s.strip_suffix('Z').unwrap_or(s), 0),
    };
    let main = main.split('.').next()?;
    let t = humantime::parse_rfc3339(&format!("{main}Z")).ok()?;
    Some(crate::model::time::unix_seconds(t) - offset)
}

/// `04/Dec/2026:07:00:00 +0000`
fn parse_access_time(s: &str) -> Option<i64> {
    let (date, zone) = s.split_once(' ')?;
    let mut parts = date.splitn(4, ['/', ':']);
    let (day, mon, year, clock) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == mon)? + 1;
    let offset = format!("{}:{}", zone.get(..3)?, zone.get(3..5)?);
    parse_time(&format!("{year}-{m:02}-{day}T{clock}{offset}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_are_read_from_each_log_shape_and_events() {
        let d = format!("sha256:{}", "cd".repeat(32));
        let text = format!(
            "time=\"2026-12-01T10:00:00.5Z\" level=info msg=\"response completed\" \
             http.request.method=GET http.request.uri=\"/v2/team/app/manifests/v1\" \
             http.response.status=200\n\
             time=\"2026-12-01T11:00:00Z\" level=info msg=\"response completed\" \
             http.request.method=HEAD http.request.uri=\"/v2/team/app/manifests/v2\" \
             http.response.status=200\n\
             {{\"time\":\"2026-12-02T10:00:00+01:00\",\"msg\":\"response completed\",\
             \"http.request.method\":\"GET\",\"http.request.uri\":\"/v2/team/app/manifests/{d}\",\
             \"http.response.status\":200}}\n\
             127.0.0.1 - - [03/Dec/2026:07:00:00 +0000] \"GET /v2/web/manifests/latest HTTP/1.1\" 200 528 \"\" \"skopeo\"\n\
             127.0.0.1 - - [03/Dec/2026:08:00:00 +0000] \"GET /v2/web/manifests/gone HTTP/1.1\" 404 0 \"\" \"x\"\n\
             {{\"MESSAGE\":\"time=\\\"2026-11-20T00:00:00Z\\\" level=info msg=\\\"hello\\\"\"}}\n\
             {{\"events\":[{{\"action\":\"pull\",\"timestamp\":\"2026-12-04T00:00:00Z\",\
             \"target\":{{\"repository\":\"api\",\"tag\":\"v3\",\"digest\":\"{d}\"}}}}]}}\n\
             not a record\n"
        );
        let mut p = Pulls::default();
        let timed = text.lines().filter(|l| p.line(l)).count();
        assert_eq!(timed, 7);
        let t = |s: &str| parse_time(s).unwrap();
        let digest = Digest::parse(&d).unwrap();
        assert_eq!(
            p.last("team/app", &["v1".into()], None),
            Some(t("2026-12-01T10:00:00Z"))
        );
        assert_eq!(
            p.last("team/app", &["v2".into()], None),
            None,
            "a HEAD is no pull"
        );
        assert_eq!(
            p.last("team/app", &["v2".into()], Some(&digest)),
            Some(t("2026-12-02T09:00:00Z")),
            "a pull by digest counts for every tag on it"
        );
        assert_eq!(
            p.last("web", &["latest".into()], None),
            Some(t("2026-12-03T07:00:00Z"))
        );
        assert_eq!(p.last("web", &["gone".into()], None), None);
        assert_eq!(
            p.last("api", &["v3".into()], None),
            Some(t("2026-12-04T00:00:00Z"))
        );
        assert_eq!(
            p.span(),
            Some((t("2026-11-20T00:00:00Z"), t("2026-12-04T00:00:00Z")))
        );
        assert_eq!(p.pulls, 4);
    }

    #[test]
    fn a_gzipped_rotated_log_is_read_and_a_file_with_no_time_is_named() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("registry.log.2.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"time=\"2026-12-01T10:00:00Z\" msg=\"response completed\" http.request.method=GET http.request.uri=\"/v2/a/manifests/t\" http.response.status=200\n").unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let p = Pulls::read(&[gz]).unwrap();
        assert!(p.last("a", &["t".into()], None).is_some());
        let junk = dir.path().join("notes.txt");
        std::fs::write(&junk, "hello\n").unwrap();
        let e = Pulls::read(std::slice::from_ref(&junk))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&junk.display().to_string()) && e.contains("no line has a time"),
            "{e}"
        );
    }
}
