//! Exit codes, and the one place where a command's outcome or error becomes one (as fd's
//! `exit_codes.rs`).

use regsweep::commands::outcome::{Error, Outcome};

/// Exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The job ran and did all it was asked.
    Success = 0,
    /// The job ran, but some deletes failed (gc), problems were found (audit), or a signal stopped it.
    Partial = 1,
    /// The job could not run, or refused to delete.
    Error = 2,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

impl Exit {
    /// What a command that ran exits with, and what is said on stderr after its report.
    pub fn of(outcome: Outcome) -> (Exit, Option<String>) {
        match outcome {
            Outcome::Done => (Exit::Success, None),
            Outcome::Partial => (Exit::Partial, None),
            Outcome::Stopped(why) => (Exit::Partial, Some(why)),
            Outcome::Refused(r) => (Exit::Error, Some(r.to_string())),
        }
    }

    /// What a command that did not run to a report exits with, and what is said: a refusal or a
    /// stop as it is, a failure with its whole chain of causes.
    pub fn of_error(error: Error) -> (Exit, String) {
        match error {
            Error::Refused(r) => (Exit::Error, r.to_string()),
            Error::Stopped(why) => (Exit::Partial, why),
            e => (Exit::Error, format!("{:#}", anyhow::Error::new(e))),
        }
    }
}
