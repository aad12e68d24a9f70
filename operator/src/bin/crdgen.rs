//! Writes the CRDs into each DIR (default `crds/`), or with `--check` fails when any DIR differs.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dirs = vec![];
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                eprintln!("usage: crdgen [--check] [DIR...]");
                return ExitCode::SUCCESS;
            }
            _ => dirs.push(PathBuf::from(arg)),
        }
    }
    if dirs.is_empty() {
        dirs.push(PathBuf::from("crds"));
    }
    let mut ok = true;
    for dir in &dirs {
        for (name, yaml) in rag_operator::crds::rendered() {
            let path = dir.join(name);
            if check {
                if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
                    eprintln!("{} is out of date: run `make crds`", path.display());
                    ok = false;
                }
            } else if let Err(err) =
                std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, yaml))
            {
                eprintln!("writing {}: {err}", path.display());
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
