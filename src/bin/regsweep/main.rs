//! The `regsweep` binary: parse, open the store, call the library, render, map to an exit code.

mod arenas;
mod cli;
mod display;
mod exit;
mod run;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    run::run(cli).into()
}
