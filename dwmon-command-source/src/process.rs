//! Running one command: in its own process group, bounded in time and output, and the whole
//! group killed when the run ends, so nothing it started outlives the fetch.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// What one run may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub timeout: Duration,
    pub max_output_bytes: u64,
    pub max_stderr_bytes: usize,
}

/// What to run.
#[derive(Debug)]
pub(crate) struct Invocation<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [(&'a str, &'a str)],
    pub working_dir: Option<&'a Path>,
}

/// A run that ended by itself.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Excerpt,
}

/// Why a run did not finish.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(std::io::Error),
    /// It ran past the timeout; its group was killed.
    Timeout,
    /// It printed more than the limit on stdout; its group was killed.
    OutputTooLarge,
    /// Reading its pipes or waiting for it failed.
    Io(std::io::Error),
}

/// The start of a command's stderr, made safe to show: control characters escaped, cut to a
/// few KiB with a note of how much was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Excerpt(pub String);

impl Excerpt {
    fn new(kept: &[u8], total: u64) -> Excerpt {
        let text = String::from_utf8_lossy(kept);
        let mut shown = escape_control(text.trim_end());
        let left_out = total.saturating_sub(kept.len() as u64);
        if left_out > 0 {
            shown.push_str(&format!(" ... ({left_out} more bytes)"));
        }
        Excerpt(shown)
    }
}

/// Escapes control characters (newlines, tabs, terminal escapes) as `\n`, `\t`, `\u{1b}`, so
/// a command's output can neither forge log lines nor drive the reader's terminal.
pub(crate) fn escape_control(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Runs `invocation` to its end within `limits`.
pub(crate) async fn run(invocation: &Invocation<'_>, limits: Limits) -> Result<Finished, RunError> {
    let mut command = Command::new(invocation.program);
    command
        .args(invocation.args)
        .envs(invocation.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group (pgid = its pid): one signal reaches everything it starts.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = invocation.working_dir {
        command.current_dir(dir);
    }
    let mut child = spawn(&mut command).await?;
    // Taken now (`id()` is None once the child has been reaped). Declared after `child`, so
    // also when this future is dropped half-way (the engine's own fetch timeout, shutdown)
    // the group is killed before the child is.
    let group = GroupKiller(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let result = tokio::time::timeout(limits.timeout, async {
        let (stdout, stderr, status) = tokio::try_join!(
            read_limited(stdout, limits.max_output_bytes),
            read_excerpt(stderr, limits.max_stderr_bytes),
            async { child.wait().await.map_err(RunError::Io) },
        )?;
        Ok(Finished {
            status,
            stdout,
            stderr,
        })
    })
    .await;
    // Also after a normal end: whatever it left running in its group goes too. A group id
    // cannot be reused while any member is alive, so this never hits a stranger.
    drop(group);
    match result {
        Ok(Ok(finished)) => Ok(finished),
        Ok(Err(error)) => {
            let _ = child.wait().await;
            Err(error)
        }
        Err(_elapsed) => {
            let _ = child.wait().await;
            Err(RunError::Timeout)
        }
    }
}

/// Spawns `command`, retrying briefly on "text file busy" (ETXTBSY): a script just written
/// (by a deploy, or by another thread of this process while a third one forked) is still
/// open for writing somewhere for a moment.
async fn spawn(command: &mut Command) -> Result<tokio::process::Child, RunError> {
    let mut delay = Duration::from_millis(10);
    for _ in 0..5 {
        match command.spawn() {
            Err(error)
                if error.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error()) =>
            {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other.map_err(RunError::Spawn),
        }
    }
    command.spawn().map_err(RunError::Spawn)
}

/// Kills the process group it names when dropped.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// SIGKILL to the process group `group` (the child's pid), ignoring a group already gone.
fn kill_group(group: Option<u32>) {
    use rustix::process::{kill_process_group, Pid, Signal};
    // Never 0 or 1: kill(-1) would signal every process we may signal.
    let Some(pid) = group
        .and_then(|id| i32::try_from(id).ok())
        .filter(|&id| id > 1)
        .and_then(Pid::from_raw)
    else {
        return;
    };
    match kill_process_group(pid, Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(error) => {
            tracing::warn!(group = pid.as_raw_nonzero().get(), %error, "could not kill a command's process group")
        }
    }
}

/// Reads a pipe to its end, failing as soon as it holds more than `max` bytes.
async fn read_limited<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    max: u64,
) -> Result<Vec<u8>, RunError> {
    let mut out = Vec::new();
    let Some(pipe) = pipe else {
        return Ok(out);
    };
    pipe.take(max.saturating_add(1))
        .read_to_end(&mut out)
        .await
        .map_err(RunError::Io)?;
    if out.len() as u64 > max {
        return Err(RunError::OutputTooLarge);
    }
    Ok(out)
}

/// Reads a pipe to its end (so the writer never blocks), keeping its first `keep` bytes.
async fn read_excerpt<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    keep: usize,
) -> Result<Excerpt, RunError> {
    let Some(mut pipe) = pipe else {
        return Ok(Excerpt::default());
    };
    let mut kept = Vec::new();
    let mut total = 0u64;
    let mut buffer = [0u8; 8192];
    loop {
        let read = pipe.read(&mut buffer).await.map_err(RunError::Io)?;
        if read == 0 {
            break;
        }
        total += read as u64;
        let room = keep.saturating_sub(kept.len()).min(read);
        kept.extend_from_slice(&buffer[..room]);
    }
    Ok(Excerpt::new(&kept, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_escape_and_cut() {
        assert_eq!(
            Excerpt::new(b"bad\x1b[31m\tthing\nline 2\n", 22).0,
            "bad\\u{1b}[31m\\tthing\\nline 2"
        );
        assert_eq!(Excerpt::new(b"abc", 10).0, "abc ... (7 more bytes)");
    }
}
