//! Product version and the `version` line every binary prints.

/// The product version (kept in step with the Teleport major version we are compatible with).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `Teleport vX.Y.Z git:<rev> rustc <ver>`; each binary passes its build-time revision and compiler.
pub fn version_line(git_rev: &str, rustc: &str) -> String {
    format!("Teleport v{VERSION} git:{git_rev} rustc {rustc}")
}

/// The major version number of a version string such as `18.0.0` or `v17.2.1`.
pub fn major(version: &str) -> Option<u64> {
    version.trim().trim_start_matches('v').split('.').next()?.parse().ok()
}

/// Parses `X.Y.Z` (with optional `v` and pre-release suffix) into a comparable triple.
pub fn parse_semver(version: &str) -> Option<(u64, u64, u64)> {
    let v = version.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next().unwrap_or("0").parse().ok()?;
    let c = it.next().unwrap_or("0").parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((a, b, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(major("18.0.0"), Some(18));
        assert_eq!(major("v17.2.1"), Some(17));
        assert_eq!(parse_semver("12.0.0-dev"), Some((12, 0, 0)));
        assert_eq!(parse_semver("garbage"), None);
        assert!(version_line("abc", "1.95.0").starts_with("Teleport v"));
    }
}
