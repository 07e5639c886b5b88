//! `WWW-Authenticate` challenges of the distribution API and the token request they ask
//! for (pure parsing; the requests themselves are made by the client).

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// The challenges in a `WWW-Authenticate` header value, in order; unknown schemes are
/// left out.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let scheme_end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        let scheme = &rest[..scheme_end];
        rest = rest[scheme_end..].trim_start_matches([' ', '\t', ',']);
        let mut params: Vec<(String, String)> = Vec::new();
        // Parameters follow until a token that is not `key=` starts the next challenge.
        while let Some(eq) = rest.find('=') {
            let key = &rest[..eq];
            if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == ',') {
                break;
            }
            let (value, after) = parse_value(&rest[eq + 1..]);
            params.push((key.to_ascii_lowercase(), value));
            rest = after.trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None => break,
            }
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            out.push(Challenge::Basic);
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(realm) = get("realm") {
                out.push(Challenge::Bearer {
                    realm,
                    service: get("service"),
                    scope: get("scope"),
                });
            }
        }
        if scheme.is_empty() {
            break;
        }
    }
    out
}

/// A quoted string (with `\` escapes) or a token; returns it and what follows.
fn parse_value(s: &str) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                c => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        (s[..end].to_string(), &s[end..])
    }
}

/// The token endpoint URL for a bearer challenge: `realm?service=...&scope=...`.
pub fn token_url(realm: &str, service: Option<&str>, scope: &str) -> String {
    let mut url = realm.to_string();
    let mut sep = if realm.contains('?') { '&' } else { '?' };
    if let Some(service) = service {
        url.push(sep);
        url.push_str("service=");
        url.push_str(&percent_encode(service));
        sep = '&';
    }
    url.push(sep);
    url.push_str("scope=");
    url.push_str(&percent_encode(scope));
    url
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer_challenge() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            }]
        );
    }

    #[test]
    fn basic_and_several_challenges() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        let both = r#"Basic realm="x", Bearer realm="http://127.0.0.1:1/token", service=reg"#;
        assert_eq!(
            parse_challenges(both),
            vec![
                Challenge::Basic,
                Challenge::Bearer {
                    realm: "http://127.0.0.1:1/token".into(),
                    service: Some("reg".into()),
                    scope: None,
                }
            ]
        );
        assert_eq!(
            parse_challenges(r#"Negotiate abc, Digest realm="a""#),
            vec![]
        );
        assert_eq!(
            parse_challenges(r#"bearer realm="a\"b""#),
            vec![Challenge::Bearer {
                realm: "a\"b".into(),
                service: None,
                scope: None
            }]
        );
    }

    #[test]
    fn token_urls_are_encoded() {
        assert_eq!(
            token_url(
                "https://auth.example/token",
                Some("registry.example"),
                "repository:team/app:pull"
            ),
            "https://auth.example/token?service=registry.example&scope=repository%3Ateam%2Fapp%3Apull"
        );
        assert_eq!(
            token_url("http://h/t?x=1", None, "a b"),
            "http://h/t?x=1&scope=a%20b"
        );
    }
}
