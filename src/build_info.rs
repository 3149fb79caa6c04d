//! What `version` says about this build: the version line scripts compare, then the
//! commit, the build date, static or dynamic linking and the target triple, from the
//! facts `build.rs` hands over at compile time (empty when it could not have them).

/// `version`'s answer: `NAME VERSION` alone on the first line (what scripts check), the
/// details on the lines after it.
pub fn version_text(statically_linked: bool) -> String {
    let or_unknown = |v: &'static str| if v.is_empty() { "unknown" } else { v };
    let built = env!("ACR_ENTRA_BUILD_EPOCH").parse::<i64>().map_or_else(
        |_| "unknown (SOURCE_DATE_EPOCH was not set at build time)".to_string(),
        crate::utc,
    );
    format!(
        "{} {}\ncommit: {}\nbuilt: {built}\nlinkage: {}\ntarget: {}",
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
    fn the_first_line_is_name_and_version_alone() {
        let text = version_text(true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("{} {}", crate::NAME, crate::VERSION));
        assert_eq!(lines[3], "linkage: static");
        assert_eq!(version_text(false).lines().nth(3), Some("linkage: dynamic"));
        assert!(lines[1].starts_with("commit: ") && lines[2].starts_with("built: "));
        assert!(
            lines[4].starts_with("target: ") && lines.len() == 5,
            "{text}"
        );
    }
}
