//! Errors of the engine's API, one per Step Functions error code, so the wire protocol can
//! answer `{"__type": code, "message": ...}` as AWS does.

/// An engine API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)]
pub enum EngineError {
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidDefinition(String),
    #[error("{0}")]
    StateMachineDoesNotExist(String),
    #[error("{0}")]
    StateMachineAlreadyExists(String),
    #[error("{0}")]
    ExecutionDoesNotExist(String),
    #[error("{0}")]
    ExecutionAlreadyExists(String),
    #[error("{0}")]
    InvalidExecutionInput(String),
    #[error("{0}")]
    ActivityDoesNotExist(String),
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    TaskDoesNotExist(String),
    #[error("{0}")]
    TaskTimedOut(String),
    #[error("{0}")]
    InvalidOutput(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    StateMachineTypeNotSupported(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyTags(String),
    /// The engine's own database failed.
    #[error("engine storage: {0}")]
    Storage(String),
}

impl EngineError {
    /// The Step Functions error code (`__type`).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::InvalidArn(_) => "InvalidArn",
            EngineError::InvalidName(_) => "InvalidName",
            EngineError::InvalidDefinition(_) => "InvalidDefinition",
            EngineError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            EngineError::StateMachineAlreadyExists(_) => "StateMachineAlreadyExists",
            EngineError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            EngineError::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            EngineError::InvalidExecutionInput(_) => "InvalidExecutionInput",
            EngineError::ActivityDoesNotExist(_) => "ActivityDoesNotExist",
            EngineError::InvalidToken(_) => "InvalidToken",
            EngineError::TaskDoesNotExist(_) => "TaskDoesNotExist",
            EngineError::TaskTimedOut(_) => "TaskTimedOut",
            EngineError::InvalidOutput(_) => "InvalidOutput",
            EngineError::Validation(_) => "ValidationException",
            EngineError::StateMachineTypeNotSupported(_) => "StateMachineTypeNotSupported",
            EngineError::ResourceNotFound(_) => "ResourceNotFound",
            EngineError::Conflict(_) => "ConflictException",
            EngineError::TooManyTags(_) => "TooManyTags",
            EngineError::Storage(_) => "InternalError",
        }
    }

    /// Whether the caller is at fault (a 400 on the wire) rather than the engine (a 500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, EngineError::Storage(_))
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Storage(e.to_string())
    }
}
