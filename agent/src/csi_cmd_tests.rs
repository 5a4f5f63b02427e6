use super::*;

#[test]
fn sizes() {
    assert_eq!(parse_size("64Mi").unwrap(), 64 << 20);
    assert_eq!(parse_size("1G").unwrap(), 1_000_000_000);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert!(parse_size("1Qi").is_err());
    assert!(parse_size("x").is_err());
    assert!(parse_size("99999999999Ti").is_err());
}

#[test]
fn a_refused_call_prints_the_code_name_and_the_message() {
    let refused =
        |code, msg: &str| anyhow::Error::from(CallFailed(tonic::Status::new(code, msg.to_owned())));
    let staged = refused(
        tonic::Code::FailedPrecondition,
        "volume vol-1 is staged at /k/staging",
    );
    assert_eq!(
        format!("{staged:#}"),
        "FailedPrecondition: volume vol-1 is staged at /k/staging"
    );
    assert_eq!(crate::error::exit_code(&staged), 1);
    let invalid = refused(tonic::Code::InvalidArgument, "name is empty");
    assert_eq!(format!("{invalid:#}"), "InvalidArgument: name is empty");
    assert_eq!(crate::error::exit_code(&invalid), 2);
    assert_eq!(
        format!("{:#}", refused(tonic::Code::NotFound, " ")),
        "NotFound"
    );
}
