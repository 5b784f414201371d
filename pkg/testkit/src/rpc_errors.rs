//! Assertions on the errors a service answers over NATS, shared by every service's tests.

use rpc::ErrorCode;

/// Asserts `result` failed with `code`, and returns the error.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<T, rpc::Error>,
    code: ErrorCode,
) -> rpc::Error {
    match result {
        Ok(value) => panic!("expected {code}, got {value:?}"),
        Err(error) => {
            assert_eq!(error.code(), code, "{error}");
            error
        }
    }
}

/// The fields an `invalid_argument` error names, in order.
#[track_caller]
pub fn bad_fields(error: &rpc::Error) -> Vec<&str> {
    assert_eq!(error.code(), ErrorCode::InvalidArgument, "{error}");
    error.details().iter().map(|d| d.field.as_str()).collect()
}
