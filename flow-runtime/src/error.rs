//! The one error type of flow, carrying the context a user needs to act on it.

use std::path::PathBuf;

/// Everything that can end a flow job, with the operator, connector or record it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user function panicked; the job was stopped.
    #[error("operator `{operator}` (subtask {subtask}) panicked: {message}")]
    UserPanic {
        /// The operator's name, as `explain()` shows it.
        operator: String,
        /// The 0-based subtask that panicked.
        subtask: usize,
        /// The panic's message.
        message: String,
    },
    /// An I/O error on a file or directory.
    #[error("{operator}: {action} `{}`: {source}", path.display())]
    Io {
        /// The operator or connector doing the I/O.
        operator: String,
        /// What it was doing ("create directory", "write", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A connector failed.
    #[error("connector `{connector}`: {message}")]
    Connector {
        /// The source or sink.
        connector: String,
        /// What went wrong.
        message: String,
    },
    /// A checkpoint or savepoint cannot be written or restored: missing, corrupt, of another
    /// job, or holding state the job's operator cannot read.
    #[error("{}operator `{operator}`: {message}", file.as_ref().map(|f| format!("checkpoint file `{}`: ", f.display())).unwrap_or_default())]
    State {
        /// The operator whose state it is (its uid), or `restore` for the checkpoint itself.
        operator: String,
        /// The file concerned, if one is.
        file: Option<PathBuf>,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The job or its configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A worker thread could not be started or ended abnormally.
    #[error("worker `{task}`: {message}")]
    Worker {
        /// The task (stage and subtask).
        task: String,
        /// What happened.
        message: String,
    },
    /// An upstream or downstream task stopped before the end of the stream; the job is being
    /// torn down because of an error reported elsewhere.
    #[error("task `{0}` stopped because a connected task failed")]
    Cancelled(String),
}

impl Error {
    /// Whether this error only follows from another task's failure.
    pub fn is_secondary(&self) -> bool {
        matches!(self, Error::Cancelled(_))
    }

    /// An I/O error with its operator, action and path.
    pub fn io(
        operator: impl Into<String>,
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            operator: operator.into(),
            action,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
