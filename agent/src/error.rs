//! The agent's one error boundary: [`UsageError`] for input a person can fix, and
//! [`exit_code`], the mapping of any command's error to the process's exit code. The library
//! crates (`hearth-net`, `hearth-coordinator`, `hearth-csi`) have their own error enums; the
//! commands map the bad-input ones to [`UsageError`].

/// An error a person can fix by changing the command line or input files; exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error: 2 for bad input (a CSI call refused as invalid included), 1
/// otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<UsageError>().is_some() {
        2
    } else if let Some(failed) = err.downcast_ref::<crate::csi_cmd::CallFailed>() {
        failed.exit_code()
    } else {
        1
    }
}

/// The text of an error and its causes, `outer: cause: root`, each cause only when the text
/// so far does not already say it (Hearth's errors carry their cause in their own message, so
/// a plain chain would repeat it: `connecting to X: connecting to X: refused: refused`).
pub fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_others_1() {
        let usage = anyhow::Error::from(UsageError("--size: not a size".into()));
        assert_eq!(exit_code(&usage), 2);
        assert_eq!(exit_code(&usage.context("creating the volume")), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("connection refused")), 1);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connecting to {endpoint}: {source}")]
    struct Connect {
        endpoint: String,
        source: std::io::Error,
    }

    #[test]
    fn error_text_says_each_cause_once() {
        let io = std::io::Error::from_raw_os_error(2);
        let inner = Connect {
            endpoint: "unix:/x".into(),
            source: io,
        };
        let err = anyhow::Error::new(inner).context("applying ovn");
        let text = error_text(err.as_ref());
        assert_eq!(
            text,
            "applying ovn: connecting to unix:/x: No such file or directory (os error 2)"
        );
        let plain = anyhow::anyhow!("root").context("outer");
        assert_eq!(error_text(plain.as_ref()), "outer: root");
    }
}
