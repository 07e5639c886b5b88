//! Who the container's process runs as: the `user` of the definition or the image,
//! resolved through the image's /etc/passwd and /etc/group the way runc does.

use crate::taskdef::{IdOrName, parse_user};

/// The text of the image's /etc/passwd and /etc/group; empty when the image has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageUsers {
    /// /etc/passwd.
    pub passwd: String,
    /// /etc/group.
    pub group: String,
}

/// A user resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups: those listing the user as a member, when no group was
    /// given explicitly.
    pub additional_gids: Vec<u32>,
    /// The user's name, when /etc/passwd has it.
    pub name: Option<String>,
    /// The home directory from /etc/passwd, or "/".
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// Resolves "uid", "uid:gid", "name" or "name:group" against the image's files. An empty
/// `user` means root, as in Docker.
pub fn resolve_user(user: &str, users: &ImageUsers) -> Result<ResolvedUser, String> {
    let spec = if user.is_empty() {
        parse_user("0")?
    } else {
        parse_user(user)?
    };
    let passwd: Vec<PasswdEntry> = users.passwd.lines().filter_map(passwd_entry).collect();
    let groups: Vec<GroupEntry> = users.group.lines().filter_map(group_entry).collect();

    let (uid, entry) = match &spec.user {
        IdOrName::Name(name) => {
            let e = passwd
                .iter()
                .find(|e| e.name == name)
                .ok_or_else(|| format!("no user {name:?} in the image's /etc/passwd"))?;
            (e.uid, Some(e))
        }
        IdOrName::Id(uid) => (*uid, passwd.iter().find(|e| e.uid == *uid)),
    };
    let name = entry.map(|e| e.name.to_string());

    let (gid, additional_gids) = match &spec.group {
        Some(IdOrName::Id(gid)) => (*gid, Vec::new()),
        Some(IdOrName::Name(group)) => {
            let g = groups
                .iter()
                .find(|g| g.name == group)
                .ok_or_else(|| format!("no group {group:?} in the image's /etc/group"))?;
            (g.gid, Vec::new())
        }
        None => {
            let mut extra: Vec<u32> = match &name {
                Some(n) => groups
                    .iter()
                    .filter(|g| g.members.contains(&n.as_str()))
                    .map(|g| g.gid)
                    .collect(),
                None => Vec::new(),
            };
            extra.sort_unstable();
            extra.dedup();
            (entry.map_or(0, |e| e.gid), extra)
        }
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        name,
        home: entry
            .map(|e| e.home)
            .filter(|h| !h.is_empty())
            .unwrap_or("/")
            .to_string(),
    })
}

/// name:password:uid:gid:gecos:home:shell
fn passwd_entry(line: &str) -> Option<PasswdEntry<'_>> {
    if line.starts_with('#') {
        return None;
    }
    let fields: Vec<&str> = line.split(':').collect();
    Some(PasswdEntry {
        name: fields.first().filter(|n| !n.is_empty())?,
        uid: fields.get(2)?.parse().ok()?,
        gid: fields.get(3)?.parse().ok()?,
        home: fields.get(5).copied().unwrap_or(""),
    })
}

/// name:password:gid:member,member
fn group_entry(line: &str) -> Option<GroupEntry<'_>> {
    if line.starts_with('#') {
        return None;
    }
    let fields: Vec<&str> = line.split(':').collect();
    Some(GroupEntry {
        name: fields.first().filter(|n| !n.is_empty())?,
        gid: fields.get(2)?.parse().ok()?,
        members: fields
            .get(3)
            .map(|m| {
                m.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageUsers {
        ImageUsers {
            passwd: "root:x:0:0:root:/root:/bin/sh\n\
                     # service accounts\n\
                     nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n\
                     app:x:1000:1000::/home/app:/bin/sh\n\
                     broken line\n"
                .to_string(),
            group: "root:x:0:root\n\
                    wheel:x:10:root,app\n\
                    nginx:x:101:\n\
                    app:x:1000:\n\
                    video:x:44:app\n"
                .to_string(),
        }
    }

    #[test]
    fn a_name_takes_ids_home_and_groups_from_the_image() {
        assert_eq!(
            resolve_user("app", &image()),
            Ok(ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10, 44],
                name: Some("app".into()),
                home: "/home/app".into(),
            })
        );
    }

    #[test]
    fn a_number_known_to_passwd_gets_its_group_too() {
        let u = resolve_user("101", &image()).unwrap();
        assert_eq!((u.uid, u.gid), (101, 101));
        assert_eq!(u.name.as_deref(), Some("nginx"));
    }

    #[test]
    fn a_number_unknown_to_passwd_is_used_as_is() {
        let u = resolve_user("4242", &image()).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(u.additional_gids.is_empty());
        assert_eq!(u.name, None);
    }

    #[test]
    fn an_explicit_group_drops_supplementary_groups() {
        let u = resolve_user("app:nginx", &image()).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 101));
        assert!(u.additional_gids.is_empty());
        let u = resolve_user("1000:5", &image()).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 5));
    }

    #[test]
    fn empty_means_root_with_roots_groups() {
        let u = resolve_user("", &image()).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert_eq!(u.additional_gids, vec![0, 10]);
        assert_eq!(u.home, "/root");
        // An image without /etc/passwd still runs as root.
        let u = resolve_user("", &ImageUsers::default()).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve_user("postgres", &image()),
            Err("no user \"postgres\" in the image's /etc/passwd".to_string())
        );
        assert_eq!(
            resolve_user("app:staff", &image()),
            Err("no group \"staff\" in the image's /etc/group".to_string())
        );
    }
}
