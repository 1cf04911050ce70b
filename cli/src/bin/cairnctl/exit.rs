//! How cairnctl ends: etcdctl's exit codes (`ctlv3/command/error.go`) and the error that
//! carries one up to `main`, which prints it as etcdctl's `ExitWithError` does
//! (`Error: <message>` on stderr).

/// Success.
pub const SUCCESS: i32 = 0;
/// A failed request or a generic error.
pub const ERROR: i32 = 1;
/// The connection failed (`lease keep-alive`).
pub const BAD_CONNECTION: i32 = 2;
/// Malformed transaction or watch input on stdin.
pub const INVALID_INPUT: i32 = 3;
/// A valid flag with an unsupported value (`--consistency x`, `-w foo`).
pub const BAD_FEATURE: i32 = 4;
/// A watch ended because the server cancelled it.
pub const INTERRUPTED: i32 = 5;
/// Wrong arguments for a command.
pub const BAD_ARGS: i32 = 128;

/// A command's failure: an exit code and, unless it was already reported, a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The process exit code.
    pub code: i32,
    /// Printed as `Error: <message>`; `None` when the command already said why.
    pub message: Option<String>,
}

impl CliError {
    /// A failure printed as `Error: <message>`.
    pub fn new(code: i32, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: Some(message.into()),
        }
    }

    /// A failure whose explanation was already written.
    pub fn silent(code: i32) -> CliError {
        CliError {
            code,
            message: None,
        }
    }

    /// [`BAD_ARGS`] with a message.
    pub fn bad_args(message: impl Into<String>) -> CliError {
        CliError::new(BAD_ARGS, message)
    }

    /// [`BAD_FEATURE`] with a message.
    pub fn bad_feature(message: impl Into<String>) -> CliError {
        CliError::new(BAD_FEATURE, message)
    }

    /// [`INVALID_INPUT`] with a message.
    pub fn invalid_input(message: impl Into<String>) -> CliError {
        CliError::new(INVALID_INPUT, message)
    }

    /// [`ERROR`] with a message.
    pub fn error(message: impl Into<String>) -> CliError {
        CliError::new(ERROR, message)
    }
}
