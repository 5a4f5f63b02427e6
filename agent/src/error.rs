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
}
