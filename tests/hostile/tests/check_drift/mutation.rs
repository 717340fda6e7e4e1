//! check-drift, seeded mutation tests of its parsers (helpers in `crate::support::mutation`): each
//! input is a valid seed mutated by `Rng::mutate`; a parser may refuse it, and must never panic,
//! hang or accept what its own later steps cannot handle.

use std::collections::HashSet;
use std::path::Path;

use crate::support::drift_fixtures;
use crate::support::mutation::run;

#[test]
fn plan_parser_and_analysis_survive_mutations() {
    let mut seeds = Vec::new();
    for f in std::fs::read_dir(drift_fixtures().join("plans")).unwrap() {
        seeds.push(std::fs::read(f.unwrap().path()).unwrap());
    }
    let tokens: &[&[u8]] = &[
        b"null",
        b"[]",
        b"{}",
        b"\"delete\"",
        b"\"create\"",
        b"true",
        b"1e999",
        b"-0",
        b"\"\\u0000\"",
        b"\"after_sensitive\":true",
        b"\"format_version\":\"2.0\"",
        b"[[[[[[",
    ];
    let history: HashSet<String> = ["proxmox_virtual_environment_vm.a".to_owned()].into();
    run("plan", 0x9_1A4, &seeds, tokens, |input| {
        let Ok(plan) = check_drift::plan::parse(input) else {
            return false;
        };
        let analysis = check_drift::plan::analyze(&plan, &history);
        let _ = check_drift::plan::sensitive_strings(&plan);
        for rc in plan.resource_changes.iter().flatten() {
            let _ = check_drift::plan::diff(&rc.change);
        }
        let _ = analysis.resources.len();
        true
    });
}

#[test]
fn ignore_rule_parser_survives_mutations() {
    let seeds: Vec<Vec<u8>> = vec![
        b"# accepted differences\nproxmox_virtual_environment_vm.jellyfin  memory.dedicated  # ballooning\nmodule.*.proxmox_* tags expires=2099-01-01  # reason\n".to_vec(),
        b"terraform_data.dns\n\n   \t\nproxmox_virtual_environment_vm.a[\"x\"] disk.*.size # ok\n".to_vec(),
    ];
    let tokens: &[&[u8]] = &[
        b"[",
        b"]",
        b"{a,b}",
        b"**",
        b"\\",
        b"expires=",
        b"2026-02-30",
        b" # ",
        b"\n",
        b"*",
        b"?",
        b"[!a-",
        b"\xff",
    ];
    let today = jiff::civil::date(2026, 11, 21);
    run("ignore", 0x1_6E0E, &seeds, tokens, |input| {
        let text = String::from_utf8_lossy(input);
        check_drift::ignore::parse(&text, Path::new(".driftignore"), today).is_ok()
    });
}
