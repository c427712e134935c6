//! Stray signals: `hearken serve` without `--rubric` survives SIGHUP (before: killed at once, no
//! drain, no log line), ignores the signals whose default would kill it, and drains on the ones
//! that ask it to stop. Only SIGKILL ends it without a drain.

mod common;

use std::io::Read as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn send(child: &Child, signal: &str) {
    assert!(
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits up to `within` for the child to exit.
fn exited(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signals_either_drain_the_server_or_leave_it_serving() {
    for (stop, label) in [
        ("QUIT", "SIGQUIT"),
        ("TERM", "SIGTERM"),
        ("XCPU", "SIGXCPU"),
    ] {
        let (child, url) = spawn_serve(&[], &[], Stdio::piped());
        let mut server = KillOnDrop(Some(child));
        // The handlers are installed before the server listens.
        wait_for_listener(&url);
        let child = server.0.as_mut().unwrap();
        for stray in ["HUP", "USR1", "USR2", "ALRM", "PIPE", "VTALRM", "PROF"] {
            send(child, stray);
            assert!(
                exited(child, Duration::from_millis(300)).is_none(),
                "SIG{stray} ended the server"
            );
        }
        send(child, stop);
        let status = exited(child, Duration::from_secs(10)).expect("drained and exited");
        assert!(status.success(), "{label}: {status:?}");
        let mut log = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        server.0 = None;
        assert!(
            log.contains("no --rubric file, nothing to reload"),
            "SIGHUP was not logged: {log}"
        );
        assert!(log.contains("SIGUSR1 received and ignored"), "{log}");
        assert!(log.contains(&format!("{label} received")), "{log}");
        assert!(
            log.contains("health NOT_SERVING"),
            "no drain on {label}: {log}"
        );
        assert!(log.contains("server stopped"), "{label}: {log}");
    }
}
