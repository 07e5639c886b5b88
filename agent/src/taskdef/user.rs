//! The `user` field's forms: "uid", "uid:gid", "name", "name:group" and mixes of them.

/// A user or group, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOrName {
    /// Numeric.
    Id(u32),
    /// Looked up in the image's /etc/passwd or /etc/group.
    Name(String),
}

/// A parsed `user` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// The user.
    pub user: IdOrName,
    /// The group, when given after a colon.
    pub group: Option<IdOrName>,
}

/// Reads "uid", "uid:gid", "name" or "name:group".
pub fn parse_user(text: &str) -> Result<UserSpec, String> {
    let (user, group) = match text.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (text, None),
    };
    let part = |s: &str, what: &str| -> Result<IdOrName, String> {
        if s.is_empty() {
            return Err(format!("{text:?} has an empty {what}"));
        }
        if s.contains(':') || s.chars().any(char::is_whitespace) {
            return Err(format!(
                "{text:?} is not a user (give uid, uid:gid, name or name:group)"
            ));
        }
        if s.chars().all(|c| c.is_ascii_digit()) {
            s.parse()
                .map(IdOrName::Id)
                .map_err(|_| format!("{text:?}: {what} id {s} is too large"))
        } else {
            Ok(IdOrName::Name(s.to_string()))
        }
    };
    Ok(UserSpec {
        user: part(user, "user")?,
        group: group.map(|g| part(g, "group")).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_forms() {
        assert_eq!(
            parse_user("1000"),
            Ok(UserSpec {
                user: IdOrName::Id(1000),
                group: None
            })
        );
        assert_eq!(
            parse_user("1000:50"),
            Ok(UserSpec {
                user: IdOrName::Id(1000),
                group: Some(IdOrName::Id(50))
            })
        );
        assert_eq!(
            parse_user("nginx"),
            Ok(UserSpec {
                user: IdOrName::Name("nginx".into()),
                group: None
            })
        );
        assert_eq!(
            parse_user("nginx:www-data"),
            Ok(UserSpec {
                user: IdOrName::Name("nginx".into()),
                group: Some(IdOrName::Name("www-data".into()))
            })
        );
    }

    #[test]
    fn malformed_users() {
        for text in ["", ":", "a:", ":b", "a:b:c", "99999999999", "a b"] {
            assert!(parse_user(text).is_err(), "{text:?} accepted");
        }
    }
}
