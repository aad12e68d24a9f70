//! Writes `config/prometheus/rules.yaml` and the README's table of alerts from the rule
//! renderer, or with `--check` fails when either differs. Run from the repository root.

use std::process::ExitCode;

use rag_operator::monitoring::docs;

const RULES: &str = "config/prometheus/rules.yaml";
const README: &str = "README.md";

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let readme = std::fs::read_to_string(README).unwrap_or_default();
    let Some(new_readme) = docs::with_table(&readme) else {
        eprintln!(
            "{README} has no `{}` … `{}` markers",
            docs::TABLE_BEGIN,
            docs::TABLE_END
        );
        return ExitCode::FAILURE;
    };
    let files = [(RULES, docs::rules_file()), (README, new_readme)];
    let mut ok = true;
    for (path, want) in files {
        if check {
            if std::fs::read_to_string(path).ok().as_deref() != Some(want.as_str()) {
                eprintln!("{path} is out of date: run `make crds`");
                ok = false;
            }
        } else if let Err(err) = std::fs::write(path, want) {
            eprintln!("writing {path}: {err}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
