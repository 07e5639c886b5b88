//! A real registry for pull tests: Debian's `docker-registry` on a free loopback port with
//! its own storage and config, images pushed into it with `skopeo`, and, for bearer-token
//! authentication, a small token server that signs JWTs with a self-signed certificate the
//! registry is configured to trust, so that the registry itself verifies every token.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use tempfile::TempDir;

/// How the registry lets clients in.
pub enum Auth {
    Anonymous,
    /// `auth: htpasswd` with one user.
    Basic {
        user: String,
        password: String,
    },
    /// `auth: token`: tokens from `server`, checked against its certificate.
    Token {
        server: Arc<TokenServer>,
    },
}

/// A running `docker-registry`, stopped when dropped.
pub struct Registry {
    child: Child,
    dir: TempDir,
    port: u16,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("create a registry directory");
        let port = free_port();
        let auth_section = match &auth {
            Auth::Anonymous => String::new(),
            Auth::Basic { user, password } => {
                let htpasswd = dir.path().join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbc"])
                    .arg(&htpasswd)
                    .args([user, password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(out.status.success(), "htpasswd: {out:?}");
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            Auth::Token { server } => format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                server.realm(),
                TokenServer::SERVICE,
                TokenServer::ISSUER,
                server.cert_path().display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_section}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).expect("write the registry config");
        let log =
            |name: &str| fs::File::create(dir.path().join(name)).expect("create a registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log("access.log"))
            .stderr(log("registry.log"))
            .spawn()
            .expect("start docker-registry (Debian package docker-registry)");
        let registry = Registry { child, dir, port };
        crate::wait_for("the registry to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        registry
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's access log so far (one line per request).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// How many times a client got the blob `digest` in full.
    pub fn blob_downloads(&self, digest: &str) -> usize {
        let blob = format!("/blobs/{digest} ");
        self.access_log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&blob) && l.contains("\" 200 "))
            .count()
    }

    /// Pushes `oci:LAYOUT:REF` to `docker://HOST/TARGET` with skopeo (`--all` copies every
    /// manifest of an index).
    pub fn push(
        &self,
        layout: &Path,
        reference: &str,
        target: &str,
        all: bool,
        creds: Option<(&str, &str)>,
    ) {
        let mut command = Command::new("skopeo");
        command.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if all {
            command.arg("--all");
        }
        if let Some((user, password)) = creds {
            command
                .arg("--dest-creds")
                .arg(format!("{user}:{password}"));
        }
        let out = command
            .arg(format!("oci:{}:{reference}", layout.display()))
            .arg(format!("docker://{}/{target}", self.host()))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy to {target} failed: {}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// The digest of the manifest the registry serves for `target`, as skopeo sees it.
    pub fn manifest_digest(&self, target: &str, creds: Option<(&str, &str)>) -> String {
        crate::oci::sha256(&self.raw_manifest(target, creds))
    }

    /// The manifest the registry serves for `target` (skopeo compresses layers on push,
    /// so it is not the layout's).
    pub fn manifest(&self, target: &str) -> serde_json::Value {
        serde_json::from_slice(&self.raw_manifest(target, None)).expect("a JSON manifest")
    }

    fn raw_manifest(&self, target: &str, creds: Option<(&str, &str)>) -> Vec<u8> {
        let mut command = Command::new("skopeo");
        command.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some((user, password)) = creds {
            command.arg("--creds").arg(format!("{user}:{password}"));
        }
        let out = command
            .arg(format!("docker://{}/{target}", self.host()))
            .output()
            .expect("run skopeo inspect");
        assert!(out.status.success(), "skopeo inspect: {out:?}");
        out.stdout
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token server for the distribution token flow: `GET /token?service=..&scope=..` with
/// HTTP basic credentials answers `{"token": JWT}`, a JWT signed (RS256, by the `openssl`
/// command) with a key whose self-signed certificate rides in the token's `x5c` header and
/// is the registry's `rootcertbundle`. Stops when dropped.
pub struct TokenServer {
    dir: TempDir,
    port: u16,
    stop: Arc<AtomicBool>,
    issuer: Arc<Issuer>,
}

/// What the serving thread needs: the key, the certificate, the one user.
struct Issuer {
    key: PathBuf,
    cert_der: Vec<u8>,
    user: String,
    password: String,
    /// `user scope` of every token issued.
    issued: Mutex<Vec<String>>,
}

impl TokenServer {
    pub const SERVICE: &'static str = "berth-test-registry";
    pub const ISSUER: &'static str = "berth-test-token-server";

    /// Starts the server; only `user:password` gets tokens.
    pub fn start(user: &str, password: &str) -> Arc<TokenServer> {
        let dir = tempfile::Builder::new()
            .prefix("berth-token-")
            .tempdir()
            .expect("create a token server directory");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=berth-test-token-server", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl req");
        assert!(out.status.success(), "openssl req: {out:?}");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("run openssl x509");
        assert!(der.status.success(), "openssl x509: {der:?}");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let port = listener.local_addr().expect("token server address").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let issuer = Arc::new(Issuer {
            key,
            cert_der: der.stdout,
            user: user.to_string(),
            password: password.to_string(),
            issued: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (serving, stopping) = (Arc::clone(&issuer), Arc::clone(&stop));
        thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = serving.answer(stream);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Arc::new(TokenServer {
            dir,
            port,
            stop,
            issuer,
        })
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// `user scope` of each token issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.issuer
            .issued
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Issuer {
    fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("authorization") {
                    authorization = Some(value.trim().to_string());
                }
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("");
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let scopes: Vec<String> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(key, _)| *key == "scope")
            .map(|(_, value)| percent_decode(value))
            .collect();
        let expected = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.user, self.password))
        );
        if authorization.as_deref() != Some(expected.as_str()) {
            let body = r#"{"details":"invalid credentials"}"#;
            return write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        let token = self.sign(&scopes)?;
        if let Ok(mut issued) = self.issued.lock() {
            issued.push(format!("{} {}", self.user, scopes.join(" ")));
        }
        let body = json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// A JWT granting every scope asked for (`repository:NAME:ACTIONS`).
    fn sign(&self, scopes: &[String]) -> std::io::Result<String> {
        let header =
            json!({"typ": "JWT", "alg": "RS256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let access: Vec<_> = scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let kind = parts.next()?;
                let name = parts.next()?;
                let actions: Vec<&str> = parts.next()?.split(',').collect();
                Some(json!({"type": kind, "name": name, "actions": actions}))
            })
            .collect();
        let claims = json!({
            "iss": TokenServer::ISSUER,
            "sub": self.user,
            "aud": TokenServer::SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": crate::unique_name("jti"),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut openssl = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        openssl
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?
            .write_all(input.as_bytes())?;
        let mut signature = Vec::new();
        openssl
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?
            .read_to_end(&mut signature)?;
        openssl.wait()?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
