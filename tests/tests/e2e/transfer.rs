//! Issue 31, item 1: copying files across the trust. A root user reaches a tunnel node of a leaf
//! with `tsh scp`, stock `sftp`, `scp` (SFTP mode) and legacy `scp -O`; the node serves the files
//! as the login (ownership, permissions, home); a mapped leaf role with `ssh_file_copy: false`
//! refuses every one of them; the leaf's audit log has each transfer with the mapped roles.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use e2e::{LeafWithTwoUsers, TempDir, leaf_with_two_users, run, wait_for};

/// `alice` may copy; one of `bob`'s mapped leaf roles says `ssh_file_copy: false`.
fn world(tag: &str) -> LeafWithTwoUsers {
    leaf_with_two_users(
        tag,
        "kind: role\nversion: v5\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n---\nkind: role\nversion: v5\nmetadata: {name: no-copy}\nspec:\n  options:\n    ssh_file_copy: false\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n",
        "no-copy",
        "access,restricted",
        &format!("files-{tag}"),
    )
}

/// Bytes that are not the same in any two 4 KiB blocks (a misplaced chunk shows).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn visitor() -> (u32, std::path::PathBuf) {
    let u = nix::unistd::User::from_name("visitor").unwrap().unwrap();
    (u.uid.as_raw(), u.dir)
}

/// A fresh directory in visitor's home, owned by visitor, removed at the end.
struct RemoteDir(std::path::PathBuf);

impl RemoteDir {
    fn new(tag: &str) -> RemoteDir {
        let (uid, home) = visitor();
        let d = home.join(format!("xfer-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(uid), None).unwrap();
        RemoteDir(d)
    }
    /// The path relative to visitor's home (as scp writes it).
    fn rel(&self) -> String {
        self.0.file_name().unwrap().to_string_lossy().into_owned()
    }
}

impl Drop for RemoteDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn tsh_scp_copies_both_ways_across_the_trust_as_the_login_and_a_mapped_role_can_refuse_it() {
    let w = world("scp");
    let (uid, _) = visitor();
    let cl = format!("--cluster={}", w.leaf.opts.name);
    let node = w.node.name.clone();
    let local = TempDir::new("scp-local");
    let remote = RemoteDir::new("scp");
    let big = pattern(3 * 1024 * 1024 + 12345, 7);
    std::fs::write(local.path().join("big.bin"), &big).unwrap();
    std::fs::set_permissions(local.path().join("big.bin"), std::fs::Permissions::from_mode(0o640)).unwrap();

    // Upload into a directory given relative to the login's home.
    let dest = format!("visitor@{node}:{}/", remote.rel());
    let up = w.alice.run(&["scp", &cl, local.path().join("big.bin").to_str().unwrap(), &dest]);
    up.ok("tsh scp upload");
    assert_eq!(up.stderr, "", "no progress bar without a terminal: {up:?}");
    let copied = remote.0.join("big.bin");
    assert_eq!(std::fs::read(&copied).unwrap(), big, "byte-exact upload");
    let m = std::fs::metadata(&copied).unwrap();
    assert_eq!(m.uid(), uid, "the file belongs to the login, not root");
    assert_eq!(m.mode() & 0o777, 0o640, "the source's mode");

    // Download back under a new name; then a directory with -r and -p; then globs.
    let back = local.path().join("back.bin");
    w.alice.run(&["scp", &cl, &format!("visitor@{node}:{}/big.bin", remote.rel()), back.to_str().unwrap()]).ok("download");
    assert_eq!(std::fs::read(&back).unwrap(), big, "byte-exact download");
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.log"), b"first\n").unwrap();
    std::fs::write(tree.join("b.log"), b"second\n").unwrap();
    std::fs::write(tree.join("sub/c.txt"), b"third\n").unwrap();
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    std::fs::File::open(tree.join("a.log")).unwrap().set_modified(old).unwrap();
    let no_r = w.alice.run(&["scp", &cl, tree.to_str().unwrap(), &dest]);
    assert_eq!(no_r.code, 1, "{no_r:?}");
    assert!(no_r.stderr.contains("is a directory: use -r"), "{no_r:?}");
    w.alice.run(&["scp", &cl, "-r", "-p", tree.to_str().unwrap(), &dest]).ok("scp -r -p");
    assert_eq!(std::fs::read(remote.0.join("tree/sub/c.txt")).unwrap(), b"third\n");
    assert_eq!(std::fs::metadata(remote.0.join("tree/a.log")).unwrap().mtime(), 1_500_000_000, "-p keeps the time");
    assert_eq!(std::fs::metadata(remote.0.join("tree/sub")).unwrap().uid(), uid);
    let got = TempDir::new("scp-globs");
    w.alice.run(&["scp", &cl, &format!("visitor@{node}:{}/tree/*.log", remote.rel()), got.path().to_str().unwrap()]).ok("glob download");
    let mut names: Vec<String> =
        std::fs::read_dir(got.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["a.log", "b.log"], "the glob matched on the node");

    // Clear one-line errors with scp's exit status 1.
    let missing = w.alice.run(&["scp", &cl, &format!("visitor@{node}:{}/nope.txt", remote.rel()), got.path().to_str().unwrap()]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_eq!(missing.stderr.lines().count(), 1, "{missing:?}");
    assert!(missing.stderr.contains("nope.txt: no such file or directory"), "{missing:?}");
    let denied = w.alice.run(&["scp", &cl, local.path().join("big.bin").to_str().unwrap(), &format!("visitor@{node}:/root/forbidden.bin")]);
    assert_eq!(denied.code, 1, "{denied:?}");
    assert!(denied.stderr.contains("/root/forbidden.bin: Permission denied"), "{denied:?}");
    assert!(!Path::new("/root/forbidden.bin").exists(), "nothing written as root");
    // tsh could not reach the node at all: 255, as ssh and scp do.
    let nowhere = w.alice.run(&["scp", &cl, local.path().join("big.bin").to_str().unwrap(), "visitor@no-such-node:/tmp/"]);
    assert_eq!(nowhere.code, 255, "{nowhere:?}");

    // A mapped leaf role with ssh_file_copy: false refuses, naming the option.
    let refused =
        w.bob.run(&["scp", &cl, local.path().join("big.bin").to_str().unwrap(), &format!("visitor@{node}:{}/bob.bin", remote.rel())]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("ssh_file_copy") && refused.stderr.contains("no-copy"), "{refused:?}");
    assert!(!remote.0.join("bob.bin").exists());
    // Bob may still run commands there: only copying is refused.
    let ls = w.bob.run(&["ssh", &cl, &format!("visitor@{node}"), "echo", "still-here"]);
    assert_eq!(ls.stdout, "still-here\n", "{ls:?}");

    // The leaf (whose node served it) audits each transfer with the mapped roles.
    let events = wait_for("the leaf's sftp events", Duration::from_secs(20), || {
        let ev = w.leaf.events();
        let summary = ev.iter().any(|e| {
            e["code"] == "TS021I"
                && e["file_transfer_stats"].as_array().is_some_and(|s| s.iter().any(|f| f["bytes_written"] == big.len() as u64))
        });
        let refused = ev.iter().any(|e| e["code"] == "TS020E" && e["user"] == "bob");
        (summary && refused).then_some(ev)
    });
    let open = events
        .iter()
        .find(|e| e["code"] == "TS001I" && e["path"].as_str().is_some_and(|p| p.ends_with("big.bin")) && e["user"] == "alice")
        .expect("an sftp open event for the upload");
    assert_eq!(open["roles"], serde_json::json!(["visitor"]), "the mapped leaf roles");
    assert_eq!(open["origin_cluster"], w.root.opts.name.as_str());
    assert_eq!(open["login"], "visitor");
    assert!(!w.root.events().iter().any(|e| e["event"] == "sftp"), "the root's log has no file events of the leaf's node");
}

#[test]
fn stock_sftp_and_scp_in_both_modes_work_through_tsh_config_and_are_refused_by_ssh_file_copy() {
    let w = world("ossh");
    let (uid, _) = visitor();
    let cfg = w.alice.home.path().join("ssh_config");
    std::fs::write(&cfg, w.alice.run(&["config"]).ok("tsh config")).unwrap();
    let bob_cfg = w.bob.home.path().join("ssh_config");
    std::fs::write(&bob_cfg, w.bob.run(&["config"]).ok("tsh config")).unwrap();
    let host = format!("{}.{}", w.node.name, w.leaf.opts.name);
    let remote = RemoteDir::new("ossh");
    let local = TempDir::new("ossh-local");
    let data = pattern(2 * 1024 * 1024 + 7, 11);
    let src = local.path().join("data.bin");
    std::fs::write(&src, &data).unwrap();
    let tool = |prog: &str, cfg: &Path, args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["-F", cfg.to_str().unwrap(), "-o", "BatchMode=yes"];
        all.extend_from_slice(args);
        run(Path::new(prog), &all, &[], stdin, Duration::from_secs(60))
    };

    // scp in its default (SFTP) mode, with a ~ path; then legacy scp -O.
    tool("scp", &cfg, &[src.to_str().unwrap(), &format!("visitor@{host}:~/{}/sftp-mode.bin", remote.rel())], None).ok("scp (SFTP mode)");
    tool("scp", &cfg, &["-O", src.to_str().unwrap(), &format!("visitor@{host}:{}/legacy.bin", remote.rel())], None).ok("scp -O");
    for f in ["sftp-mode.bin", "legacy.bin"] {
        assert_eq!(std::fs::read(remote.0.join(f)).unwrap(), data, "{f} byte-exact");
        assert_eq!(std::fs::metadata(remote.0.join(f)).unwrap().uid(), uid, "{f} belongs to the login");
    }
    // sftp: its start directory is the login's home; get, put, mkdir, rename, ls.
    let back = local.path().join("back.bin");
    let batch = format!(
        "pwd\ncd {d}\nmkdir made\nput {s} made/put.bin\nrename made/put.bin made/moved.bin\nget made/moved.bin {b}\nls made\n",
        d = remote.rel(),
        s = src.display(),
        b = back.display()
    );
    let out = tool("sftp", &cfg, &["-b", "-", &format!("visitor@{host}")], Some(&batch));
    out.ok("sftp batch");
    assert!(out.stdout.contains("Remote working directory: /home/visitor"), "{out:?}");
    assert!(out.stdout.contains("moved.bin"), "{out:?}");
    assert_eq!(std::fs::read(&back).unwrap(), data, "sftp get byte-exact");
    assert_eq!(std::fs::metadata(remote.0.join("made")).unwrap().uid(), uid);
    // A path the login may not write.
    let denied = tool("sftp", &cfg, &["-b", "-", &format!("visitor@{host}")], Some(&format!("put {} /root/nope.bin\n", src.display())));
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(denied.stderr.contains("Permission denied"), "{denied:?}");

    // Bob's mapped role refuses all three, and says which option.
    for (prog, args) in [
        ("scp", vec![src.to_str().unwrap().to_string(), format!("visitor@{host}:{}/b1.bin", remote.rel())]),
        ("scp", vec!["-O".into(), src.to_str().unwrap().to_string(), format!("visitor@{host}:{}/b2.bin", remote.rel())]),
        ("sftp", vec!["-b".into(), "-".into(), format!("visitor@{host}")]),
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tool(prog, &bob_cfg, &a, Some(&format!("put {} {}/b3.bin\n", src.display(), remote.rel())));
        assert_ne!(out.code, 0, "{prog} {args:?}: {out:?}");
        assert!(out.stderr.contains("ssh_file_copy"), "{prog} {args:?}: {out:?}");
    }
    for f in ["b1.bin", "b2.bin", "b3.bin"] {
        assert!(!remote.0.join(f).exists(), "{f} was not written");
    }
    let ev = wait_for("the refusals in the leaf's log", Duration::from_secs(20), || {
        let ev = w.leaf.events();
        (ev.iter().any(|e| e["code"] == "T3010E") && ev.iter().any(|e| e["code"] == "TS020E")).then_some(ev)
    });
    assert!(ev.iter().any(|e| e["code"] == "T3005I" && e["user"] == "alice"), "legacy scp upload audited");
}
