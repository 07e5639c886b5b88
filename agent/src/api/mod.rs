//! The agent's API: the ECS API's own JSON 1.1 protocol (`POST /` with
//! `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Action>`) on a unix socket, so ECS
//! users' tools and habits fit. Errors are ECS-shaped: HTTP 400 with
//! `{"__type": "ClientException", "message": ...}`.

pub mod client;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// What an action failed with, in the ECS API's error names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    /// ClientException, InvalidParameterException, ServerException, ...
    pub kind: String,
    pub message: String,
}

impl ApiError {
    pub fn client(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "ClientException".into(),
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "InvalidParameterException".into(),
            message: message.into(),
        }
    }

    pub fn server(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "ServerException".into(),
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"__type": self.kind, "message": self.message})
    }
}

/// The names or ARNs a Describe action takes in `body[field]` (`tasks`, `services`):
/// at least one, each a string. `what` is one of them in the error, "task" or "service".
pub fn name_list(body: &Value, field: &str, what: &str) -> Result<Vec<String>, ApiError> {
    let items = match &body[field] {
        Value::Null => &Vec::new(),
        Value::Array(items) => items,
        _ => return Err(ApiError::invalid(format!("{field}: expected a list"))),
    };
    if items.is_empty() {
        return Err(ApiError::invalid(format!(
            "{field}: name at least one {what}"
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::invalid(format!("{field}[{i}]: expected a string")))
        })
        .collect()
}

/// Anything that answers ECS actions: the agent, or a test double.
pub trait Actions: Send + Sync + 'static {
    fn call(&self, action: &str, body: Value) -> Result<Value, ApiError>;
    /// Prometheus text for `GET /metrics`.
    fn metrics(&self) -> String {
        String::new()
    }
    /// The containers' counters for `GET /stats` (`?all=true`: of stopped tasks too).
    fn stats(&self, _all: bool) -> Result<Value, ApiError> {
        Err(ApiError {
            kind: "UnknownOperationException".into(),
            message: "GET /stats is not served here".into(),
        })
    }
}

/// Serves the API on `socket` (mode 0600) until the future is dropped.
pub async fn serve(actions: Arc<dyn Actions>, socket: &Path) -> std::io::Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(socket);
    let listener = tokio::net::UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    axum::serve(listener, router(actions)).await
}

pub fn router(actions: Arc<dyn Actions>) -> Router {
    Router::new()
        .route("/", post(action))
        .route("/metrics", get(metrics))
        .route("/stats", get(stats))
        .with_state(actions)
}

async fn action(
    State(actions): State<Arc<dyn Actions>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(name) = target.strip_prefix(TARGET_PREFIX).map(str::to_string) else {
        let e = ApiError {
            kind: "UnknownOperationException".into(),
            message: format!("X-Amz-Target {target:?} is not an ECS action"),
        };
        return reply(StatusCode::BAD_REQUEST, e.body());
    };
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let e = ApiError {
                    kind: "SerializationException".into(),
                    message: format!("request body: {e}"),
                };
                return reply(StatusCode::BAD_REQUEST, e.body());
            }
        }
    };
    let result = tokio::task::spawn_blocking(move || actions.call(&name, input)).await;
    match result {
        Ok(Ok(v)) => reply(StatusCode::OK, v),
        Ok(Err(e)) => {
            let status = if e.kind == "ServerException" {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            reply(status, e.body())
        }
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::server(e.to_string()).body(),
        ),
    }
}

async fn metrics(State(actions): State<Arc<dyn Actions>>) -> Response {
    let text = tokio::task::spawn_blocking(move || actions.metrics())
        .await
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, crate::stats::prometheus::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

async fn stats(State(actions): State<Arc<dyn Actions>>, RawQuery(query): RawQuery) -> Response {
    let all = query
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv == "all" || kv == "all=true" || kv == "all=1");
    match tokio::task::spawn_blocking(move || actions.stats(all)).await {
        Ok(Ok(v)) => reply(StatusCode::OK, v),
        Ok(Err(e)) => reply(StatusCode::BAD_REQUEST, e.body()),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::server(e.to_string()).body(),
        ),
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_actions_take_a_non_empty_list_of_strings() {
        let ok = name_list(&json!({"tasks": ["a", "arn:x/b"]}), "tasks", "task");
        assert_eq!(ok, Ok(vec!["a".to_string(), "arn:x/b".to_string()]));
        let refused = |body: Value| name_list(&body, "services", "service").unwrap_err().message;
        assert_eq!(refused(json!({})), "services: name at least one service");
        assert_eq!(
            refused(json!({"services": []})),
            "services: name at least one service"
        );
        assert_eq!(
            refused(json!({"services": "web"})),
            "services: expected a list"
        );
        assert_eq!(
            refused(json!({"services": ["web", 7]})),
            "services[1]: expected a string"
        );
    }
}
