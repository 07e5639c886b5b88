//! A client of the OCI distribution API for one repository: manifests and blobs, over
//! HTTPS, or plain HTTP for loopback registries and those the user names as insecure, with
//! anonymous, basic and bearer-token authentication.

pub mod auth;
pub mod credentials;

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Response, StatusCode};

use self::auth::Challenge;
use self::credentials::Credentials;
use super::digest::Digest;
use super::error::{ImageError, Result};
use super::reference::Reference;

/// Largest manifest or index accepted: the distribution spec's own limit is 4 MiB.
const MAX_MANIFEST: u64 = 4 << 20;

/// One repository of one registry, with the authorization it has earned so far.
pub struct Repository {
    registry: String,
    repository: String,
    base: String,
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

impl Repository {
    /// A client for `reference`'s repository. `insecure` lists `HOST[:PORT]` registries
    /// that may be spoken to over plain HTTP; loopback registries always may.
    pub fn connect(reference: &Reference, insecure: &[String]) -> Result<Repository> {
        let endpoint = reference.endpoint();
        let scheme = if is_loopback(endpoint) || is_listed(endpoint, insecure) {
            "http"
        } else {
            "https"
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Repository {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            base: format!("{scheme}://{endpoint}/v2/{}", reference.repository),
            agent,
            credentials: credentials::load(&reference.registry)?,
            authorization: Mutex::new(None),
        })
    }

    /// The manifest or index named by a tag or digest, with the media type the registry
    /// gave it.
    pub fn manifest(&self, object: &str) -> Result<(Vec<u8>, Option<String>)> {
        let url = format!("{}/manifests/{object}", self.base);
        let mut response = self.get(&url, Some(super::manifest::media::ACCEPT_MANIFESTS))?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| self.error(format!("read manifest {object}: {e}")))?;
        Ok((body, content_type))
    }

    /// A stream of the blob's bytes. Redirects (to a CDN, say) are followed without the
    /// registry's credentials.
    pub fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        let url = format!("{}/blobs/{digest}", self.base);
        let response = self.get(&url, None)?;
        Ok(Box::new(response.into_body().into_reader()))
    }

    /// GET with the current authorization; on 401, answers the challenge once and retries.
    fn get(&self, url: &str, accept: Option<&str>) -> Result<Response<ureq::Body>> {
        let mut retried = false;
        loop {
            let mut request = self.agent.get(url);
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            if let Some(authorization) = self.current_authorization() {
                request = request.header("Authorization", authorization);
            }
            let response = request
                .call()
                .map_err(|e| self.error(format!("GET {url}: {e}")))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.answer(&challenge)?;
                retried = true;
                continue;
            }
            if status.is_success() {
                return Ok(response);
            }
            return Err(self.status_error(url, response));
        }
    }

    fn current_authorization(&self) -> Option<String> {
        self.authorization
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn answer(&self, header: &str) -> Result<()> {
        let challenges = auth::parse_challenges(header);
        let bearer = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }));
        let value = match (bearer, challenges.first()) {
            (
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                }),
                _,
            ) => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                format!("Bearer {}", self.token(realm, service.as_deref(), &scope)?)
            }
            (_, Some(Challenge::Basic)) => match &self.credentials {
                Some(credentials) => credentials.basic_header(),
                None => return Err(self.needs_login()),
            },
            _ => {
                return Err(self.error(format!(
                    "unauthorized, with no challenge berth can answer ({header:?})"
                )));
            }
        };
        *self
            .authorization
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(value);
        Ok(())
    }

    /// A bearer token from the realm the registry named, asked for with the stored
    /// credentials when there are some, anonymously otherwise.
    fn token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let url = auth::token_url(realm, service, scope);
        let mut request = self.agent.get(&url);
        if let Some(credentials) = &self.credentials {
            request = request.header("Authorization", credentials.basic_header());
        }
        let mut response = request
            .call()
            .map_err(|e| self.error(format!("token from {realm}: {e}")))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(match self.credentials {
                None => self.needs_login(),
                Some(_) => self.error(format!(
                    "token server {realm} refused the stored credentials ({status})"
                )),
            });
        }
        if !status.is_success() {
            return Err(self.error(format!("token from {realm}: {status}")));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.error(format!("token from {realm}: {e}")))?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| self.error(format!("token from {realm}: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.error(format!("token from {realm}: the answer has no token")))
    }

    fn needs_login(&self) -> ImageError {
        let place = credentials::config_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.docker/config.json".to_string());
        self.error(format!(
            "authentication required; no credentials for {} in {place}",
            self.registry
        ))
    }

    /// A registry error answer, with the distribution API's error code when it sent one.
    fn status_error(&self, url: &str, mut response: Response<ureq::Body>) -> ImageError {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<ErrorEntry>,
        }
        #[derive(serde::Deserialize)]
        struct ErrorEntry {
            code: String,
            #[serde(default)]
            message: String,
        }
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_vec()
            .unwrap_or_default();
        let detail = match serde_json::from_slice::<Errors>(&body) {
            Ok(errors) if !errors.errors.is_empty() => errors
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect::<Vec<_>>()
                .join("; "),
            _ => status.canonical_reason().unwrap_or("").to_string(),
        };
        let path = url.split_once("/v2/").map_or(url, |(_, p)| p);
        if status == StatusCode::UNAUTHORIZED {
            return self.error(format!(
                "GET /v2/{path}: {} {detail}; check the credentials for {}",
                status.as_u16(),
                self.registry
            ));
        }
        self.error(format!("GET /v2/{path}: {} {detail}", status.as_u16()))
    }

    fn error(&self, reason: String) -> ImageError {
        ImageError::registry(&self.registry, reason)
    }
}

/// localhost, 127.0.0.0/8 and ::1, with or without a port.
pub fn is_loopback(endpoint: &str) -> bool {
    let host = match endpoint.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => endpoint.split(':').next().unwrap_or(endpoint),
    };
    if host == "localhost" {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `endpoint` is in the insecure list, as `HOST:PORT` or as a bare `HOST`.
fn is_listed(endpoint: &str, insecure: &[String]) -> bool {
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
    insecure
        .iter()
        .map(|s| s.trim())
        .any(|s| s == endpoint || s == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("localhost:80"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("registry.example:5000"));
    }

    #[test]
    fn insecure_list_matches_host_and_port() {
        let list = vec!["10.0.0.1:5000".to_string(), "reg.lan".to_string()];
        assert!(is_listed("10.0.0.1:5000", &list));
        assert!(!is_listed("10.0.0.1:5001", &list));
        assert!(is_listed("reg.lan:443", &list));
        assert!(is_listed("reg.lan", &list));
        assert!(!is_listed("other.lan", &list));
    }
}
