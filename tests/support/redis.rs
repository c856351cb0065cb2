//! A real `redis-server` on a loopback port, for the registry's blob-descriptor cache.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis server; stopped when dropped.
pub struct RedisServer {
    pub port: u16,
    /// The password of the default user, if one is required.
    pub password: Option<String>,
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port, nothing persisted, its log in `dir`.
    /// `extra` are more `--option value` arguments (a password, ACL users).
    pub fn start(dir: &Path, password: Option<&str>, extra: &[&str]) -> RedisServer {
        let port = super::registry::free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join(format!("redis-{port}.log")));
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let server = RedisServer {
            port,
            password: password.map(str::to_owned),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.try_connect(0).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn try_connect(&self, db: i64) -> redis::RedisResult<redis::Connection> {
        let mut info = redis::RedisConnectionInfo::default().set_db(db);
        if let Some(p) = &self.password {
            info = info.set_password(p);
        }
        let addr = redis::ConnectionAddr::Tcp("127.0.0.1".into(), self.port);
        let info = redis::IntoConnectionInfo::into_connection_info(addr)?.set_redis_settings(info);
        let mut conn = redis::Client::open(info)?.get_connection()?;
        redis::cmd("PING").query::<String>(&mut conn)?;
        Ok(conn)
    }

    /// A connection to database `db`, as the default user.
    pub fn connect(&self, db: i64) -> redis::Connection {
        self.try_connect(db).expect("redis answers")
    }

    /// Every key of database `db`, with the members of those that are sets (empty for hashes).
    pub fn snapshot(&self, db: i64) -> BTreeMap<String, BTreeSet<String>> {
        let mut conn = self.connect(db);
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
        keys.into_iter()
            .map(|k| {
                let kind: String = redis::cmd("TYPE").arg(&k).query(&mut conn).unwrap();
                let members = if kind == "set" {
                    redis::cmd("SMEMBERS").arg(&k).query(&mut conn).unwrap()
                } else {
                    BTreeSet::new()
                };
                (k, members)
            })
            .collect()
    }

    /// Writes what the registry writes for a blob linked from `repo` (the global hash, the
    /// repository's set member and its hash).
    pub fn cache_blob(&self, db: i64, repo: &str, digest: &str, size: u64) {
        let mut conn = self.connect(db);
        let fields = |key: String| {
            redis::cmd("HSET")
                .arg(key)
                .arg("digest")
                .arg(digest)
                .arg("size")
                .arg(size)
                .arg("mediatype")
                .arg("application/octet-stream")
                .clone()
        };
        fields(format!("blobs::{digest}"))
            .query::<u64>(&mut conn)
            .unwrap();
        fields(format!("repository::{repo}::blobs::{digest}"))
            .query::<u64>(&mut conn)
            .unwrap();
        redis::cmd("SADD")
            .arg(format!("repository::{repo}::blobs"))
            .arg(digest)
            .query::<u64>(&mut conn)
            .unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
