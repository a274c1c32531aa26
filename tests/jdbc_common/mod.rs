//! The PostgreSQL server the JdbcSink tests write to: started by `scripts/postgres start`
//! (`.ci/run` does), on 127.0.0.1:15432. A test that cannot reach it fails, saying how to start
//! it. Each test works in a schema of its own, dropped first.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The test database's URL (`FLOW_PG_URL` overrides it).
pub fn url() -> String {
    std::env::var("FLOW_PG_URL")
        .unwrap_or_else(|_| "postgresql://flow:flow@127.0.0.1:15432/flow".to_string())
}

/// A blocking client for checking what a job wrote.
pub struct Db {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Db {
    /// Connects to `url`.
    pub fn connect_to(url: &str) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot reach the test database at {url}: {e}; start it with `scripts/postgres start`"
                    )
                });
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        });
        Db { rt, client }
    }

    /// Connects to the test database and makes schema `schema` afresh.
    pub fn fresh(schema: &str) -> Db {
        let db = Db::connect_to(&url());
        db.exec(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ));
        db
    }

    /// Runs `sql` (several statements allowed).
    pub fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The rows of `sql`, each column as text (`NULL` as "NULL").
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let rows = self
            .rt
            .block_on(self.client.simple_query(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// The one value of `sql`.
    pub fn value(&self, sql: &str) -> String {
        self.rows(sql)[0][0].clone()
    }
}

/// A second server of the tests' own, on `port`, under `target/postgres-<port>`: for tests that
/// stop and restart it.
pub struct Server {
    pub port: u16,
}

impl Server {
    fn script(&self, args: &[&str], keep: bool) -> bool {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        Command::new(root.join("scripts/postgres"))
            .args(args)
            .env("FLOW_PG_PORT", self.port.to_string())
            .env(
                "FLOW_PG_DIR",
                root.join(format!("target/postgres-{}", self.port)),
            )
            .env("FLOW_PG_KEEP_DATA", if keep { "1" } else { "0" })
            .status()
            .expect("scripts/postgres runs")
            .success()
    }
    /// Starts it with a fresh cluster, or (`keep`) the one it had.
    pub fn start(&self, keep: bool) {
        assert!(
            self.script(&["start"], keep),
            "scripts/postgres start failed"
        );
    }
    pub fn stop(&self) {
        assert!(
            self.script(&["stop"], false),
            "scripts/postgres stop failed"
        );
    }
    pub fn url(&self) -> String {
        format!("postgresql://flow:flow@127.0.0.1:{}/flow", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.script(&["stop"], false);
    }
}
