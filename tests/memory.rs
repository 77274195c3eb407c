//! Hostile configs are refused in bounded memory: nested or sized to exhaust the parser.
//!
//! A binary of its own, apart from `tests/main.rs`: a child's peak memory as `wait4`
//! reports it counts the memory of the process that spawned it (its pages until the
//! child's `exec`), so the spawning process must stay small while it measures.

use std::io::Read as _;
use std::process::Command;

/// What `portcullis validate` made of a config: its exit code, its stderr, and the most
/// memory it used, in KiB.
struct Validated {
    code: Option<i32>,
    stderr: String,
    peak_kib: i64,
}

/// Runs `portcullis validate` on `text` and waits for it with `wait4`, which reports the
/// child's resource use (its peak memory at least this small process's).
#[allow(unsafe_code)] // wait4: see the SAFETY note.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which reports its rusage"
)]
fn validate_text(text: &str) -> Validated {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hostile.yaml"), text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .current_dir(dir.path())
        .args(["validate", "-c", "hostile.yaml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("portcullis runs");
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut stderr = String::new();
        pipe.read_to_string(&mut stderr).unwrap();
        stderr
    });
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 writes the status and a whole rusage into the pointers it is given;
    // `pid` is this test's own child, not yet waited for.
    let (waited, usage) = unsafe {
        let waited = libc::wait4(pid, &mut status, 0, usage.as_mut_ptr());
        (waited, usage.assume_init())
    };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    Validated {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stderr: reader.join().unwrap(),
        peak_kib: usage.ru_maxrss,
    }
}

#[test]
fn deeply_nested_yaml_is_a_located_error_in_bounded_memory() {
    let indented: String = (0..2_000).map(|depth| " ".repeat(depth) + "a:\n").collect();
    let mut texts: Vec<String> = ["- ", "? ", "[", "{a: "]
        .iter()
        .map(|opener| opener.repeat(9_000) + "x\n")
        .collect();
    texts.push(indented + "x\n");
    for text in texts {
        let validated = validate_text(&text);
        let (opener, stderr) = (&text[..8], &validated.stderr);
        assert_eq!(validated.code, Some(1), "{opener:?}: {stderr}");
        assert!(
            stderr.contains("hostile.yaml:") && stderr.contains("nest deeper than 100 levels")
                || stderr.contains("recursion limit"),
            "{opener:?}: {stderr}"
        );
        let peak = validated.peak_kib;
        assert!(
            peak < 200 * 1024,
            "{opener:?}: validate peaked at {peak} KiB"
        );
    }
}

#[test]
fn an_oversized_config_is_refused_before_it_is_read_whole() {
    let line = "# padding padding padding padding padding padding padding padding\n";
    let text = line.repeat((17 << 20) / line.len());
    let validated = validate_text(&text);
    let stderr = &validated.stderr;
    assert_eq!(validated.code, Some(1), "{stderr}");
    assert!(stderr.contains("larger than 16 MiB"), "{stderr}");
    let peak = validated.peak_kib;
    assert!(
        (1..200 * 1024).contains(&peak),
        "validate peaked at {peak} KiB"
    );
    eprintln!("validate of a 17 MiB config peaked at {peak} KiB");
}
