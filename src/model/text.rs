//! Numbers and lists in words, as every report and message writes them.

/// The first `n` of `items` joined with "; ", and "; …" when there are more: examples in a message.
pub fn first_few(items: &[String], n: usize) -> String {
    let mut out = items[..items.len().min(n)].join("; ");
    if items.len() > n {
        out.push_str("; …");
    }
    out
}

/// `100327` as `100,327`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 manifest`, `2 manifests`, `100,327 blobs`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// Sizes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::{count, first_few, human_bytes, thousands};

    #[test]
    fn a_message_names_the_first_few_and_says_when_there_are_more() {
        let items: Vec<String> = (1..=3).map(|i| i.to_string()).collect();
        assert_eq!(first_few(&items, 5), "1; 2; 3");
        assert_eq!(first_few(&items, 3), "1; 2; 3");
        assert_eq!(first_few(&items, 2), "1; 2; …");
    }

    #[test]
    fn counts_have_separators_and_agree_in_number() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_327), "100,327");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(count(1, "manifest", "manifests"), "1 manifest");
        assert_eq!(count(0, "manifest", "manifests"), "0 manifests");
        assert_eq!(count(1_000_000, "blob", "blobs"), "1,000,000 blobs");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
