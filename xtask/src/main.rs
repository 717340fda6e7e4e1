//! `cargo xtask gen` writes man pages (`packaging/man/*.1`) and shell completions
//! (`packaging/completions/{bash,zsh,fish}/`) from the tools' clap definitions, so they are never written
//! by hand; `cargo xtask check` fails when the committed files differ from what would be generated (the
//! test suite runs it). `check` also refuses a dependency from one tool crate on another ([`graph`]) and runs the
//! source checks of [`lint`].

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;
use clap_complete::Shell;

mod examples;
mod graph;
mod lint;

fn commands() -> Vec<clap::Command> {
    vec![
        check_drift::cli::Args::command(),
        restore_vm::cli::Args::command(),
        restore_tfstate::cli::Args::command(),
        rebuild_minio::cli::Args::command(),
        rebuild_monitoring::cli::Args::command(),
        verify_backups::cli::Args::command(),
    ]
}

/// Every generated file: relative path and content.
fn generate() -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for mut cmd in commands() {
        let name = cmd.get_name().to_owned();
        cmd.build();
        let mut man = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut man)
            .with_context(|| format!("man page of {name}"))?;
        files.push((PathBuf::from(format!("packaging/man/{name}.1")), man));
        for (shell, dir, file) in [
            (Shell::Bash, "bash", name.clone()),
            (Shell::Zsh, "zsh", format!("_{name}")),
            (Shell::Fish, "fish", format!("{name}.fish")),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut out);
            files.push((
                PathBuf::from(format!("packaging/completions/{dir}/{file}")),
                out,
            ));
        }
    }
    Ok(files)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

// One arm per task (gen, check), each a short script: clearer side by side than split.
#[allow(clippy::too_many_lines)]
fn run() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = workspace_root();
    let files = generate()?;
    match task.as_str() {
        "gen" => {
            for (rel, content) in &files {
                let path = root.join(rel);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("create {}", dir.display()))?;
                }
                std::fs::write(&path, content)
                    .with_context(|| format!("write {}", path.display()))?;
            }
            eprintln!("xtask: wrote {} files", files.len());
            Ok(())
        }
        "check" => {
            let edges = graph::tool_edges(&graph::workspace_metadata(&root)?)?;
            if !edges.is_empty() {
                for edge in &edges {
                    eprintln!(
                        "xtask: a tool depends on another tool (move what they share into a library crate): {edge}"
                    );
                }
                bail!("{} dependencies between tool crates", edges.len());
            }
            let duplicated = lint::duplicated_causes(&root)?;
            if !duplicated.is_empty() {
                for finding in &duplicated {
                    eprintln!("xtask: {finding}");
                }
                bail!("{} error types print their cause twice", duplicated.len());
            }
            let bad_examples: Vec<String> = commands().iter().flat_map(examples::check).collect();
            if !bad_examples.is_empty() {
                for problem in &bad_examples {
                    eprintln!("xtask: {problem}");
                }
                bail!(
                    "{} problems with the examples in --help",
                    bad_examples.len()
                );
            }
            let private = lint::private_addresses(&root)?;
            if !private.is_empty() {
                for line in &private {
                    eprintln!(
                        "xtask: private-range address (use 127.0.0.0/8 or 192.0.2.0/24): {line}"
                    );
                }
                bail!("{} private-range addresses in tracked files", private.len());
            }
            let cited = lint::outside_citations(&root)?;
            if !cited.is_empty() {
                for line in &cited {
                    eprintln!(
                        "xtask: cites a file outside the repository (say the reason instead): {line}"
                    );
                }
                bail!("{} citations of files outside the repository", cited.len());
            }
            let stale: Vec<String> = files
                .iter()
                .filter(|(rel, content)| {
                    std::fs::read(root.join(rel)).ok().as_deref() != Some(content.as_slice())
                })
                .map(|(rel, _)| rel.display().to_string())
                .collect();
            if stale.is_empty() {
                eprintln!("xtask: {} generated files are current", files.len());
                Ok(())
            } else {
                bail!(
                    "generated files are stale (run `cargo xtask gen`): {}",
                    stale.join(", ")
                )
            }
        }
        _ => bail!("usage: cargo xtask gen|check"),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
