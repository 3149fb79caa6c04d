//! What `version` says about this build, in one line: the name and version scripts
//! compare, then the commit, the build date, static or dynamic linking and the target
//! triple, from the facts `build.rs` hands over at compile time ("unknown" when it could
//! not have them).

/// `version`'s answer: `NAME VERSION (commit C, built D, static|dynamic, TARGET)`, one
/// line, so the first two words are what scripts compare and `$(… version)` stays one
/// line in a log.
pub fn version_text(statically_linked: bool) -> String {
    let or_unknown = |v: &'static str| if v.is_empty() { "unknown" } else { v };
    let built = env!("ACR_ENTRA_BUILD_EPOCH")
        .parse::<i64>()
        .map_or_else(|_| "unknown".to_string(), crate::utc);
    format!(
        "{} {} (commit {}, built {built}, {}, {})",
        crate::NAME,
        crate::VERSION,
        or_unknown(env!("ACR_ENTRA_BUILD_COMMIT")),
        if statically_linked {
            "static"
        } else {
            "dynamic"
        },
        or_unknown(env!("ACR_ENTRA_BUILD_TARGET")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(crate::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(crate::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(crate::utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(crate::utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        assert_eq!(crate::utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn one_line_name_and_version_first() {
        let text = version_text(true);
        assert_eq!(text.lines().count(), 1, "{text}");
        let head = format!("{} {} (commit ", crate::NAME, crate::VERSION);
        assert!(text.starts_with(&head), "{text}");
        assert!(text.contains(", built ") && text.ends_with(')'), "{text}");
        assert!(text.contains(", static, "), "{text}");
        assert!(version_text(false).contains(", dynamic, "));
    }
}
