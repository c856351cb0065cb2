//! The library's warnings: what a run should tell its operator but that is no part of a report (a
//! lock that could not be released, a store whose read-only mode cannot be told, trash runs purged
//! on the way). The library never prints: it hands each line to this channel, and the binary's
//! display takes them out and shows them on stderr without tearing its progress bar (as ripgrep's
//! messages go through one place).

use std::sync::Mutex;

static WAITING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Hands `line` (without the program's name) to whoever shows warnings.
pub fn emit(line: impl Into<String>) {
    let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    waiting.push(line.into());
}

/// The lines handed in since the last call, oldest first.
pub fn drain() -> Vec<String> {
    let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *waiting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_once_in_the_order_they_went_in() {
        emit("warning: one");
        emit(String::from("two"));
        let out = drain();
        let ours: Vec<&String> = out
            .iter()
            .filter(|l| *l == "warning: one" || *l == "two")
            .collect();
        assert_eq!(ours, ["warning: one", "two"]);
        assert!(!drain().iter().any(|l| l == "two"), "drained once");
    }
}
