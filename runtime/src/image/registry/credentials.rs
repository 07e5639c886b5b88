//! Registry credentials from the docker client's config file (`$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`), `auths` section, as docker and podman read it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;

use crate::image::error::{ImageError, Result};
use crate::image::reference::DOCKER_HUB;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Where the docker client keeps its config: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The credentials stored for `registry`, if the config file names it.
pub fn load(registry: &str) -> Result<Option<Credentials>> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ImageError::io("read", &path, e)),
    };
    lookup(&text, registry).map_err(|reason| ImageError::Source { path, reason })
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The credentials for `registry` in the text of a docker config file.
pub fn lookup(text: &str, registry: &str) -> std::result::Result<Option<Credentials>, String> {
    let config: ConfigFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let wanted = normalize(registry);
    let Some((key, entry)) = config
        .auths
        .iter()
        .find(|(key, _)| normalize(key) == wanted)
    else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("auths.{key}.auth: not base64: {e}"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| format!("auths.{key}.auth: not UTF-8 text"))?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(format!(
                "auths.{key}.auth: expected base64 of user:password"
            ));
        };
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        })),
        _ => Ok(None),
    }
}

/// A registry key as the docker client writes it, reduced to a host: the scheme and any
/// path go, and Docker Hub's many names become `docker.io`.
fn normalize(key: &str) -> String {
    let host = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_field_is_base64_user_colon_password() {
        // base64("alice:s3cr:et") -- the password may contain colons.
        let text = r#"{"auths":{"127.0.0.1:5000":{"auth":"YWxpY2U6czNjcjpldA=="}}}"#;
        let c = lookup(text, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password, "s3cr:et");
        assert_eq!(lookup(text, "127.0.0.1:5001").unwrap(), None);
    }

    #[test]
    fn docker_hub_keys_and_urls() {
        let text = r#"{"auths":{"https://index.docker.io/v1/":{"username":"bob","password":"pw"}},
                       "credsStore":"desktop"}"#;
        let c = lookup(text, "docker.io").unwrap().unwrap();
        assert_eq!(c.username, "bob");
        let text = r#"{"auths":{"https://quay.io":{"auth":"Ym9iOnB3"}}}"#;
        assert_eq!(lookup(text, "quay.io").unwrap().unwrap().password, "pw");
    }

    #[test]
    fn bad_entries_name_the_key() {
        let text = r#"{"auths":{"r.example":{"auth":"!!"}}}"#;
        let err = lookup(text, "r.example").unwrap_err();
        assert!(err.starts_with("auths.r.example.auth"), "{err}");
        assert_eq!(lookup("{}", "r.example").unwrap(), None);
        assert!(lookup("not json", "r.example").is_err());
    }

    #[test]
    fn basic_header() {
        let c = Credentials {
            username: "alice".into(),
            password: "pw".into(),
        };
        assert_eq!(c.basic_header(), "Basic YWxpY2U6cHc=");
        assert!(!format!("{c:?}").contains("pw"));
    }
}
