//! The `regsweep` binary: parse, open the store, call the library, render, map to an exit code.

mod cli;
mod run;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match run::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("regsweep: {e:#}");
            run::Exit::Error.into()
        }
    }
}
