//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};
use std::thread;

use serde_json::{Value, json};
use testbed::terraform::Env;

/// Runs `f` for each environment on its own thread and returns the results in order.
pub fn each_env<T: Send>(envs: &[Env], f: impl Fn(&Env) -> T + Sync) -> Vec<T> {
    thread::scope(|scope| {
        let handles: Vec<_> = envs.iter().map(|env| scope.spawn(|| f(env))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The addresses and actions of a plan's resource changes other than no-op.
pub fn changes(plan: &Value) -> Vec<(String, Vec<String>)> {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] != json!(["no-op"]))
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_owned(),
                c["change"]["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// Every file under `dir` (outside `.terraform/`) with its content.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_name() == ".terraform" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}
