//! Build script shared by the three binaries: records the git revision and the compiler
//! version for `teleport version`, `tctl version` and `tsh version`.
//! Lives beside the binaries (not in the library) so a new commit relinks only them.

use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim().to_string();
    if s.is_empty() { None } else { Some(s) }
}

// Build scripts talk to cargo on stdout.
#[allow(clippy::print_stdout)]
fn main() {
    let rev = run("git", &["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version =
        run(&rustc, &["--version"]).and_then(|v| v.split_whitespace().nth(1).map(str::to_string)).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TP_GIT_REV={rev}");
    println!("cargo:rustc-env=TP_RUSTC_VERSION={rustc_version}");
    if let Some(git_dir) = run("git", &["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/refs/heads");
    }
    // Paths here are relative to the package being built (server/, cli-admin/, cli-user/), and
    // this script lives beside them, not in them: naming a path that does not exist would make
    // cargo treat the script as stale on every build and relink all three binaries.
    println!("cargo:rerun-if-changed=../build/version.rs");
}
