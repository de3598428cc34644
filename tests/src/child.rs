//! Processes the tests start: a guard that kills its process when dropped, so a test that
//! panics never leaves one running, and a way to start a process on a disk that is full.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};

/// Bytes in a block of the shell's `ulimit -f`, which POSIX counts in 512-byte blocks.
const ULIMIT_BLOCK: u64 = 512;

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Starts `cmd` with stdin closed and stdout and stderr piped (read them with
    /// [`ChildGuard::output`] once it has exited; the tests' children write little).
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        ChildGuard { child }
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Kills it with SIGKILL (no chance to clean up: a crash) and reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        // Fails only if it has exited already, which `wait` then reports.
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }

    /// Everything it wrote to stdout and to stderr. Call it once the process has exited:
    /// it reads each pipe to its end.
    pub fn output(&mut self) -> (String, String) {
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut out).unwrap();
        }
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (out, err)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command that runs `program` as if every file it writes lived on a disk with room for
/// `limit` bytes (rounded down to 512): its soft `RLIMIT_FSIZE` is set to that and `SIGXFSZ`
/// is ignored, so growing a file past it fails with `EFBIG` instead of killing the process.
/// The hard limit is left alone, so the process may raise the soft one again (room made on
/// the disk). The shell does both before `exec`: an ignored signal stays ignored across
/// `exec`, and no unsafe code is needed to ignore it.
pub fn on_full_disk(program: &str, limit: u64) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "trap '' XFSZ && ulimit -S -f {} && exec \"$0\" \"$@\"",
            limit / ULIMIT_BLOCK
        ))
        .arg(program);
    cmd
}

/// Lifts this process's soft `RLIMIT_FSIZE` to its hard limit: room made on the disk of
/// [`on_full_disk`].
#[cfg(unix)]
pub fn make_room() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let hard = getrlimit(Resource::Fsize).maximum;
    setrlimit(
        Resource::Fsize,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    )
    .unwrap();
}

/// Waits for `child` to end and returns its output; kills it (SIGKILL) and panics naming
/// `what` if it runs longer than `within`, so a hung command fails its test instead of
/// hanging the suite.
pub fn output_within(
    child: Child,
    within: std::time::Duration,
    what: &str,
) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{what} did not finish within {within:?}");
        }
    }
}
