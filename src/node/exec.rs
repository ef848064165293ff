//! Runs one `exec` service command (spec/jobs.md §4): the job input on
//! stdin, stdout captured up to a limit, killed at the time limit.

use crate::jobs::{JobErrorKind, JobStatus};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// What one run produced.
#[derive(Debug)]
pub(crate) struct ExecOutcome {
    /// Ok (exit 0) or why not.
    pub status: JobStatus,
    /// Standard output (at most the limit).
    pub output: Vec<u8>,
    /// Wall-clock run time, ms.
    pub run_ms: u64,
}

fn failed(kind: JobErrorKind, detail: String, output: Vec<u8>, start: Instant) -> ExecOutcome {
    ExecOutcome {
        status: JobStatus::Error { kind, detail },
        output,
        run_ms: start.elapsed().as_millis() as u64,
    }
}

/// Where output goes as it is read when a job streams (spec/jobs.md §7.1):
/// pieces in order; a full channel makes the reader wait (back-pressure).
pub(crate) type PartSink = tokio::sync::mpsc::Sender<Vec<u8>>;

/// Bytes read from the child's stdout at a time (one part at most).
const READ_BYTES: usize = crate::node::proto::MAX_JOB_PART_BYTES;

/// Runs `argv` with `input` on stdin; stderr is discarded. The child is
/// killed when `time_limit` passes or the output exceeds `max_output` bytes
/// (and when this future is dropped).
///
/// With a `sink`, stdout is passed on as it is read (pieces of at most
/// 64 KiB, as they arrive) and not kept in [`ExecOutcome::output`]; if the
/// sink's receiver is gone the child is killed (`cannot_start`, "output
/// reader gone").
///
/// Cancel safety: dropping the future kills the child.
pub(crate) async fn run(
    argv: &[String],
    input: Vec<u8>,
    time_limit: Duration,
    max_output: u64,
    sink: Option<PartSink>,
) -> ExecOutcome {
    let start = Instant::now();
    let Some((prog, args)) = argv.split_first() else {
        let detail = "empty command".to_owned();
        return failed(JobErrorKind::CannotStart, detail, Vec::new(), start);
    };
    let mut child = match spawn(prog, args) {
        Ok(c) => c,
        Err(detail) => return failed(JobErrorKind::CannotStart, detail, Vec::new(), start),
    };
    // A command that does not read its input gets a broken pipe; that is
    // not an error of the job.
    let writer = child.stdin.take().map(|mut stdin| {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        })
    });
    let mut output = Vec::new();
    let mut total = 0u64;
    let waited = {
        let stdout = child.stdout.take();
        let work = async {
            if let Some(out) = stdout {
                let mut out = out.take(max_output + 1);
                read_out(&mut out, &mut output, &mut total, sink, max_output).await?;
            }
            child.wait().await.map_err(|e| e.to_string())
        };
        tokio::time::timeout(time_limit, work).await
    };
    if let Some(w) = writer {
        w.abort();
    }
    let code = match waited {
        Err(_) => {
            let _ = child.kill().await;
            let detail = format!(
                "killed after the time limit of {} ms",
                time_limit.as_millis()
            );
            return failed(JobErrorKind::Timeout, detail, output, start);
        }
        Ok(Err(detail)) => {
            let _ = child.kill().await;
            return failed(JobErrorKind::CannotStart, detail, output, start);
        }
        Ok(Ok(st)) => st.code().unwrap_or(-1),
    };
    if total > max_output {
        output.truncate(max_output as usize);
        let detail = format!("output over the limit of {max_output} bytes");
        return failed(JobErrorKind::OverLimits, detail, output, start);
    }
    if code != 0 {
        let detail = format!("{prog} exited with code {code}");
        return failed(JobErrorKind::ExitCode(code), detail, output, start);
    }
    ExecOutcome {
        status: JobStatus::Ok,
        output,
        run_ms: start.elapsed().as_millis() as u64,
    }
}

/// Starts `prog` with piped stdin and stdout (killed when dropped).
fn spawn(prog: &str, args: &[String]) -> Result<tokio::process::Child, String> {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // The node binary runs with transparent huge pages off (crate::thp);
    // the service's program gets the system's setting.
    // SAFETY: the closure makes one prctl system call (async-signal-safe)
    // and touches no state shared with the parent.
    unsafe { cmd.pre_exec(crate::thp::enable_in_child) };
    cmd.spawn()
        .map_err(|e| format!("cannot start {prog:?}: {e}"))
}

/// Reads stdout to its end: into `output`, or piece by piece into `sink`
/// (never more than `limit` bytes passed on). `total` counts the bytes
/// read. Errs when the sink's receiver is gone.
async fn read_out(
    out: &mut (impl tokio::io::AsyncRead + Unpin),
    output: &mut Vec<u8>,
    total: &mut u64,
    sink: Option<PartSink>,
    limit: u64,
) -> Result<(), String> {
    let Some(sink) = sink else {
        let _ = out.read_to_end(output).await;
        *total = output.len() as u64;
        return Ok(());
    };
    let mut buf = vec![0; READ_BYTES];
    loop {
        let n = match out.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => n,
        };
        let room = limit.saturating_sub(*total).min(n as u64) as usize;
        *total += n as u64;
        if room == 0 {
            continue;
        }
        if sink.send(buf[..room].to_vec()).await.is_err() {
            return Err("output reader gone".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[tokio::test]
    async fn a_sink_gets_output_while_the_command_still_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gate = dir.path().join("go");
        let script = format!(
            "echo first; while [ ! -e {} ]; do sleep 0.05; done; echo second",
            gate.display()
        );
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let cmd = argv(&["sh", "-c", &script]);
        let job = tokio::spawn(async move {
            run(&cmd, Vec::new(), Duration::from_secs(10), 100, Some(tx)).await
        });
        let first = rx.recv().await.expect("a first part");
        assert_eq!(first, b"first\n");
        assert!(!job.is_finished(), "the command is still blocked");
        std::fs::write(&gate, b"").expect("gate");
        assert_eq!(rx.recv().await.expect("a second part"), b"second\n");
        assert!(rx.recv().await.is_none(), "no more parts");
        let o = job.await.expect("joins");
        assert_eq!(o.status, JobStatus::Ok);
        assert!(o.output.is_empty(), "streamed bytes are not repeated");
    }

    /// The node binary turns transparent huge pages off for itself
    /// (crate::thp); a service's program must not inherit that.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_service_program_gets_transparent_huge_pages_back() {
        assert!(crate::thp::disable(), "prctl(PR_SET_THP_DISABLE) refused");
        let secs = Duration::from_secs(5);
        let o = run(
            &argv(&["cat", "/proc/self/status"]),
            Vec::new(),
            secs,
            1 << 20,
            None,
        )
        .await;
        assert_eq!(o.status, JobStatus::Ok);
        let text = String::from_utf8_lossy(&o.output);
        let line = text.lines().find(|l| l.starts_with("THP_enabled:"));
        assert_eq!(
            line.and_then(|l| l.split_whitespace().nth(1)),
            Some("1"),
            "{line:?}"
        );
    }

    #[tokio::test]
    async fn input_goes_to_stdin_and_output_comes_back() {
        let o = run(
            &argv(&["wc", "-c"]),
            b"hello".to_vec(),
            Duration::from_secs(5),
            100,
            None,
        )
        .await;
        assert_eq!(o.status, JobStatus::Ok);
        assert_eq!(String::from_utf8_lossy(&o.output).trim(), "5");
    }

    #[tokio::test]
    async fn limits_and_failures_are_reported() {
        let secs = Duration::from_secs(5);
        let o = run(&argv(&["sh", "-c", "exit 3"]), Vec::new(), secs, 100, None).await;
        assert!(matches!(
            o.status,
            JobStatus::Error {
                kind: JobErrorKind::ExitCode(3),
                ..
            }
        ));
        let o = run(
            &argv(&["sleep", "5"]),
            Vec::new(),
            Duration::from_millis(200),
            100,
            None,
        )
        .await;
        assert!(matches!(
            o.status,
            JobStatus::Error {
                kind: JobErrorKind::Timeout,
                ..
            }
        ));
        assert!(
            o.run_ms < 2000,
            "killed at the limit, not after: {} ms",
            o.run_ms
        );
        let o = run(
            &argv(&["head", "-c", "1000", "/dev/zero"]),
            Vec::new(),
            secs,
            10,
            None,
        )
        .await;
        assert!(matches!(
            o.status,
            JobStatus::Error {
                kind: JobErrorKind::OverLimits,
                ..
            }
        ));
        assert_eq!(o.output.len(), 10);
        let o = run(&argv(&["/nonexistent/x"]), Vec::new(), secs, 10, None).await;
        assert!(matches!(
            o.status,
            JobStatus::Error {
                kind: JobErrorKind::CannotStart,
                ..
            }
        ));
    }
}
