//! The parity harness: every fixture directory under `tests/fixtures/` (and under
//! `$AUTOCANDLE_FIXTURES` when set) is loaded through its Auto class and compared with the
//! outputs Python `transformers` computed. One line per fixture; fails unless all PASS.
//! Arguments (`cargo test --test parity -- llama gpt2`) keep the fixtures whose directory
//! name contains one of them.

use std::process::ExitCode;

use autocandle_tests::{fixture_dirs, run_fixture, Outcome};

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let dirs = match fixture_dirs() {
        Ok(d) => d
            .into_iter()
            .filter(|d| {
                let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
            })
            .collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("cannot list fixtures: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for dir in &dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let outcome = run_fixture(dir).unwrap_or_else(|e| Outcome::Fail {
            output: "error".into(),
            max_abs_diff: f32::INFINITY,
            detail: format!("{e:#}"),
        });
        println!("{}", outcome.line(&name));
        match &outcome {
            Outcome::Pass { .. } => passed += 1,
            Outcome::Fail { detail, .. } => {
                eprintln!("    {name}: {detail}");
                failed += 1;
            }
            Outcome::Unsupported { reason, .. } => {
                eprintln!("    {name}: {reason}");
                failed += 1;
            }
        }
    }
    println!("parity: {passed} passed, {failed} failed");
    if dirs.is_empty() || failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
