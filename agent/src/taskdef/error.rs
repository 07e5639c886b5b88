//! What is wrong with a task definition, said with the JSON path of the field.

use std::fmt;

/// The JSON could not be read as a task definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "task definition JSON line {line} column {column}: {}{message}",
    path_prefix(path)
)]
pub struct ParseError {
    /// Path of the field being read (`containerDefinitions[0].cpu`), empty when the JSON
    /// itself is malformed.
    pub path: String,
    /// 1-based line in the input.
    pub line: usize,
    /// 1-based column in the input.
    pub column: usize,
    /// What serde found wrong.
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl ParseError {
    pub(crate) fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let (line, column) = (inner.line(), inner.column());
        // serde_json appends the position to its message; it is reported on its own.
        let full = inner.to_string();
        let message = full
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&full)
            .to_string();
        Self {
            path: if path == "." { String::new() } else { path },
            line,
            column,
            message,
        }
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path, such as `containerDefinitions[1].memory`.
    pub path: String,
    /// What is wrong, in lower case.
    pub message: String,
}

impl FieldError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Something berth accepts but does differently from ECS, or ignores.
pub type Warning = FieldError;

/// Every problem found, in the order of the document. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// The problems.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Whether some problem is at exactly this path.
    pub fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
