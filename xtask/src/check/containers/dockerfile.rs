//! The Dockerfile against the workspace: what the image runs by itself (the final stage's
//! `CMD` and `HEALTHCHECK`) is a binary it holds, and the packages its `cargo build` leaves
//! out are the ones [`NOT_IN_IMAGE`] says, which the compose checks rely on.

use std::collections::BTreeSet;

use super::workspace::{NOT_IN_IMAGE, Workspace};

/// The instructions of a Dockerfile: continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (current.is_empty() && trimmed.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The program of an exec-form command (`["gateway"]`), if it is one.
fn exec_program(form: &str) -> Option<String> {
    let words: Vec<String> = serde_json::from_str(form.trim()).ok()?;
    words.into_iter().next()
}

/// Everything wrong with the Dockerfile `text` for `workspace`; empty when it agrees.
pub fn problems(text: &str, workspace: &Workspace) -> Vec<String> {
    let instructions = instructions(text);
    let mut problems = Vec::new();
    let final_stage = instructions
        .iter()
        .rposition(|i| i.to_ascii_uppercase().starts_with("FROM "))
        .unwrap_or(0);
    for instruction in &instructions[final_stage..] {
        let (keyword, rest) = instruction.split_once(' ').unwrap_or((instruction, ""));
        let command = match keyword.to_ascii_uppercase().as_str() {
            "CMD" => rest,
            "HEALTHCHECK" => match rest.split_once(" CMD ") {
                Some((_, command)) => command,
                None => continue,
            },
            _ => continue,
        };
        match exec_program(command) {
            Some(program) if !workspace.binaries.contains(&program) => problems.push(format!(
                "Dockerfile: {keyword} runs {program}, which the workspace does not build into the image"
            )),
            Some(_) => {}
            None => problems.push(format!(
                "Dockerfile: {keyword} {command}: use the exec form, [\"binary\", \"argument\", ...]"
            )),
        }
    }

    let expected: BTreeSet<&str> = NOT_IN_IMAGE.iter().copied().collect();
    let builds: Vec<&String> = instructions
        .iter()
        .filter(|i| i.contains("cargo build"))
        .collect();
    if builds.is_empty() {
        problems.push("Dockerfile: no `cargo build` of the workspace".to_owned());
    }
    for build in builds {
        let words: Vec<&str> = build.split_whitespace().collect();
        let excluded: BTreeSet<&str> = words
            .windows(2)
            .filter(|pair| pair[0] == "--exclude")
            .map(|pair| pair[1])
            .collect();
        if excluded != expected {
            problems.push(format!(
                "Dockerfile: `cargo build` leaves out {excluded:?}, but the checks take the image to hold every binary but {expected:?}'s"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;

    fn workspace() -> Workspace {
        Workspace::load(&Layout::discover()).unwrap()
    }

    fn dockerfile() -> String {
        std::fs::read_to_string(Layout::discover().root().join("Dockerfile")).unwrap()
    }

    #[test]
    fn the_dockerfile_agrees_with_the_workspace() {
        assert_eq!(problems(&dockerfile(), &workspace()), Vec::<String>::new());
    }

    /// Each break is rejected with its reason.
    #[test]
    fn broken_dockerfiles_are_rejected_with_the_reason() {
        let good = dockerfile();
        for (from, to, reason) in [
            (
                "CMD [\"gateway\"]",
                "CMD [\"gateway-server\"]",
                "CMD runs gateway-server, which the workspace does not build",
            ),
            (
                "CMD [\"healthcheck\"]",
                "CMD [\"curl\", \"-f\", \"http://127.0.0.1:8080/health/ready\"]",
                "HEALTHCHECK runs curl, which the workspace does not build",
            ),
            ("CMD [\"gateway\"]", "CMD gateway", "use the exec form"),
            (
                "--exclude xtask",
                "--exclude xtask --exclude bench",
                "`cargo build` leaves out {\"bench\", \"xtask\"}",
            ),
            ("--exclude xtask", "", "`cargo build` leaves out {}"),
        ] {
            assert_eq!(good.matches(from).count(), 1, "{from}");
            let problems = problems(&good.replacen(from, to, 1), &workspace());
            assert!(
                problems.len() == 1 && problems[0].contains(reason),
                "{from} -> {to}: expected {reason:?}, got {problems:#?}"
            );
        }
    }

    #[test]
    fn continuation_lines_and_comments_are_read_as_docker_does() {
        let text = "FROM a AS b\n# a comment\nRUN one \\\n    # inside\n    two\nCMD [\"x\"]\n";
        assert_eq!(
            instructions(text),
            ["FROM a AS b", "RUN one two", "CMD [\"x\"]"]
        );
    }
}
