//! Every tool's `--help` ends with examples; this check parses each example command line with the tool's
//! own clap definition, so an example that names a renamed or removed flag fails `cargo xtask check`
//! instead of misleading the operator who copies it.
//!
//! An example is a line of the help's "Examples:" section indented by four spaces that starts with the
//! tool's name; a pipe (`| jq ...`) ends it.

/// The example command lines of `cmd`'s help footer.
pub fn examples(cmd: &clap::Command) -> Vec<String> {
    let name = cmd.get_name();
    let footer = cmd
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    let Some((_, section)) = footer.split_once("Examples:") else {
        return Vec::new();
    };
    section
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .map(|l| l.split(" | ").next().unwrap_or(l).trim().to_owned())
        .collect()
}

/// Problems with `cmd`'s examples: none at all, or one that its own parser refuses.
pub fn check(cmd: &clap::Command) -> Vec<String> {
    let name = cmd.get_name().to_owned();
    let lines = examples(cmd);
    if lines.len() < 3 {
        return vec![format!(
            "{name}: --help has {} examples (at least 3 expected, under \"Examples:\")",
            lines.len()
        )];
    }
    let mut problems = Vec::new();
    for line in lines {
        let Some(argv) = shlex::split(&line) else {
            problems.push(format!(
                "{name}: example does not split as a shell line: {line}"
            ));
            continue;
        };
        if let Err(e) = cmd.clone().try_get_matches_from(&argv) {
            let first = e.to_string().lines().next().unwrap_or_default().to_owned();
            problems.push(format!("{name}: example `{line}` is refused: {first}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo(after: &'static str) -> clap::Command {
        clap::Command::new("demo")
            .arg(
                clap::Arg::new("all")
                    .long("all")
                    .action(clap::ArgAction::SetTrue),
            )
            .after_help(after)
    }

    #[test]
    fn examples_are_read_and_checked() {
        let cmd = demo(
            "Examples:\n  Everything:\n    demo --all\n  Piped:\n    demo --all | jq .\n  Bad:\n    demo --nope\n\nExit status:\n    demo --ignored",
        );
        assert_eq!(examples(&cmd), ["demo --all", "demo --all", "demo --nope"]);
        let problems = check(&cmd);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("demo --nope"), "{problems:?}");
    }

    #[test]
    fn too_few_examples_is_a_problem() {
        assert_eq!(check(&demo("Examples:\n    demo --all\n")).len(), 1);
        assert_eq!(check(&demo("no examples")).len(), 1);
    }
}
