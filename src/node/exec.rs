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

/// Runs `argv` with `input` on stdin; stderr is discarded. The child is
/// killed when `time_limit` passes or the output exceeds `max_output` bytes
/// (and when this future is dropped).
///
/// Cancel safety: dropping the future kills the child.
pub(crate) async fn run(
    argv: &[String],
    input: Vec<u8>,
    time_limit: Duration,
    max_output: u64,
) -> ExecOutcome {
    let start = Instant::now();
    let Some((prog, args)) = argv.split_first() else {
        return failed(
            JobErrorKind::CannotStart,
            "empty command".into(),
            Vec::new(),
            start,
        );
    };
    let mut child = match Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let detail = format!("cannot start {prog:?}: {e}");
            return failed(JobErrorKind::CannotStart, detail, Vec::new(), start);
        }
    };
    // A command that does not read its input gets a broken pipe; that is
    // not an error of the job.
    let writer = child.stdin.take().map(|mut stdin| {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        })
    });
    let mut output = Vec::new();
    let waited = {
        let stdout = child.stdout.take();
        let work = async {
            if let Some(out) = stdout {
                let _ = out.take(max_output + 1).read_to_end(&mut output).await;
            }
            child.wait().await
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
        Ok(Err(e)) => {
            let _ = child.kill().await;
            return failed(JobErrorKind::CannotStart, e.to_string(), output, start);
        }
        Ok(Ok(st)) => st.code().unwrap_or(-1),
    };
    if output.len() as u64 > max_output {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[tokio::test]
    async fn input_goes_to_stdin_and_output_comes_back() {
        let o = run(
            &argv(&["wc", "-c"]),
            b"hello".to_vec(),
            Duration::from_secs(5),
            100,
        )
        .await;
        assert_eq!(o.status, JobStatus::Ok);
        assert_eq!(String::from_utf8_lossy(&o.output).trim(), "5");
    }

    #[tokio::test]
    async fn limits_and_failures_are_reported() {
        let secs = Duration::from_secs(5);
        let o = run(&argv(&["sh", "-c", "exit 3"]), Vec::new(), secs, 100).await;
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
        let o = run(&argv(&["/nonexistent/x"]), Vec::new(), secs, 10).await;
        assert!(matches!(
            o.status,
            JobStatus::Error {
                kind: JobErrorKind::CannotStart,
                ..
            }
        ));
    }
}
