//! The architecture invariant that the cores do no I/O (docs/ARCHITECTURE.md): no core depends,
//! even indirectly, on a web, database, mail, Redis or network-runtime crate. Read from the
//! resolved graph of `cargo metadata`, following normal dependencies only (a core's own tests
//! may use tokio).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;

const CORES: [&str; 7] = [
    "kernel",
    "auth-core",
    "notify-core",
    "portfolio-core",
    "chat-core",
    "media-core",
    "scheduler-core",
];

const IO_CRATES: [&str; 11] = [
    "actix-web",
    "actix-http",
    "hyper",
    "mio",
    "tokio",
    "reqwest",
    "mongodb",
    "bson",
    "rusqlite",
    "lettre",
    "fred",
];

/// The workspace's resolved graph: each package id's name, and its normal dependencies.
struct Graph {
    names: HashMap<String, String>,
    normal: HashMap<String, Vec<String>>,
}

impl Graph {
    fn read() -> Self {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
        let names = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_owned(),
                    p["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let normal = metadata["resolve"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                let deps = node["deps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|dep| {
                        dep["dep_kinds"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|kind| kind["kind"].is_null())
                    })
                    .map(|dep| dep["pkg"].as_str().unwrap().to_owned())
                    .collect();
                (node["id"].as_str().unwrap().to_owned(), deps)
            })
            .collect();
        Self { names, normal }
    }

    /// The names of every crate `package` depends on, directly or not, through normal
    /// dependencies.
    fn reached_from(&self, package: &str) -> HashSet<&str> {
        let start = self
            .names
            .iter()
            .find(|(_, name)| name.as_str() == package)
            .map(|(id, _)| id.as_str())
            .unwrap_or_else(|| panic!("no package {package}"));
        let mut seen = HashSet::from([start]);
        let mut next = VecDeque::from([start]);
        while let Some(id) = next.pop_front() {
            for dep in self.normal.get(id).into_iter().flatten() {
                if seen.insert(dep.as_str()) {
                    next.push_back(dep.as_str());
                }
            }
        }
        seen.iter().map(|id| self.names[*id].as_str()).collect()
    }
}

#[test]
fn the_cores_depend_on_no_io_crate() {
    let graph = Graph::read();
    // The walk sees I/O where it is: the composition root reaches all of it.
    let app = graph.reached_from("app");
    assert!(IO_CRATES.iter().all(|io| app.contains(io)), "{app:?}");
    let violations: Vec<String> = CORES
        .iter()
        .flat_map(|core| {
            let reached = graph.reached_from(core);
            IO_CRATES
                .iter()
                .filter(move |io| reached.contains(*io))
                .map(move |io| format!("{core} depends on {io}"))
        })
        .collect();
    assert!(violations.is_empty(), "{violations:#?}");
}
