//! A client of the agent's API on its unix socket: what the `berth` commands use.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{ApiError, CONTENT_TYPE, TARGET_PREFIX};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the berth agent is not running (no answer on {socket}): start it with `berth agent`")]
    NotRunning { socket: PathBuf },
    #[error("talking to the berth agent on {socket}: {msg}")]
    Transport { socket: PathBuf, msg: String },
    #[error("{}", .0.message)]
    Api(ApiError),
}

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
        }
    }

    /// Calls one ECS action and returns its response body.
    pub fn call(&self, action: &str, body: &Value) -> Result<Value, ClientError> {
        let req = hyper::Request::post("/")
            .header("host", "berth")
            .header("x-amz-target", format!("{TARGET_PREFIX}{action}"))
            .header("content-type", CONTENT_TYPE)
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| self.transport(e))?;
        let (ok, bytes) = self.send(req)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| self.transport(e))?;
        if ok {
            return Ok(value);
        }
        Err(ClientError::Api(ApiError {
            kind: value["__type"]
                .as_str()
                .unwrap_or("ServerException")
                .to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        }))
    }

    /// `GET /metrics`, as text.
    pub fn metrics(&self) -> Result<String, ClientError> {
        let (_, bytes) = self.get("/metrics")?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `GET /stats`: the counters of the containers of the tasks not yet stopped (with
    /// `all`, of every task listed).
    pub fn stats(&self, all: bool) -> Result<crate::stats::Samples, ClientError> {
        let (ok, bytes) = self.get(if all { "/stats?all=true" } else { "/stats" })?;
        if !ok {
            let value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(ClientError::Api(ApiError {
                kind: value["__type"].as_str().unwrap_or("ServerException").into(),
                message: value["message"].as_str().unwrap_or_default().into(),
            }));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.transport(e))
    }

    fn get(&self, path: &str) -> Result<(bool, Bytes), ClientError> {
        let req = hyper::Request::get(path)
            .header("host", "berth")
            .body(Full::new(Bytes::new()))
            .map_err(|e| self.transport(e))?;
        self.send(req)
    }

    /// One request on a fresh connection: whether it succeeded, and the response body.
    fn send(&self, req: hyper::Request<Full<Bytes>>) -> Result<(bool, Bytes), ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| self.transport(e))?;
        rt.block_on(async {
            let stream = tokio::net::UnixStream::connect(&self.socket)
                .await
                .map_err(|_| ClientError::NotRunning {
                    socket: self.socket.clone(),
                })?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| self.transport(e))?;
            tokio::spawn(conn);
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| self.transport(e))?;
            let ok = resp.status().is_success();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| self.transport(e))?
                .to_bytes();
            Ok((ok, bytes))
        })
    }

    fn transport(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            socket: self.socket.clone(),
            msg: e.to_string(),
        }
    }
}
