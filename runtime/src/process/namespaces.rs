//! The namespaces a container gets: new ones are created by the clone, existing ones (given
//! by path) are joined by the init before it sets anything up.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::process::step::{Step, StepResult};

#[derive(Debug, Clone)]
pub struct Namespaces {
    /// Namespaces to create, as CLONE_NEW* flags.
    pub new: CloneFlags,
    /// Namespaces to join: type, path, in the order they must be joined (user first).
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Namespaces {
    pub fn from_spec(spec: &Spec) -> Result<Namespaces> {
        let mut ns = Namespaces {
            new: CloneFlags::empty(),
            join: Vec::new(),
        };
        let list = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .cloned()
            .unwrap_or_default();
        let mut seen = Vec::new();
        for (i, n) in list.iter().enumerate() {
            let typ = n.typ();
            if seen.contains(&typ) {
                return Err(Error::Config(format!(
                    "linux.namespaces[{i}]: namespace {typ} is listed twice"
                )));
            }
            seen.push(typ);
            match n.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    if !path.exists() {
                        return Err(Error::Config(format!(
                            "linux.namespaces[{i}].path: {} does not exist",
                            path.display()
                        )));
                    }
                    ns.join.push((typ, path.clone()));
                }
                _ => ns.new |= flag(typ),
            }
        }
        ns.join
            .sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
        Ok(ns)
    }

    /// Joining a pid namespace (or a user namespace, which must come before the others are
    /// created) needs an extra fork inside the clone.
    pub fn needs_intermediate(&self) -> bool {
        self.join
            .iter()
            .any(|(t, _)| matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::User))
    }

    /// Flags for the clone itself. The cgroup namespace is unshared later, once the init
    /// sits in its cgroup, so that the namespace's root is the container's cgroup.
    pub fn clone_flags(&self) -> libc::c_int {
        let flags = if self.needs_intermediate() {
            self.new & CloneFlags::CLONE_NEWUSER
        } else {
            self.new - CloneFlags::CLONE_NEWCGROUP
        };
        flags.bits()
    }

    /// Whether the container has a namespace of this kind apart from the runtime's (in
    /// practice the host's): a new one, or a joined one that is not the runtime's own.
    pub fn separate(&self, typ: LinuxNamespaceType) -> bool {
        if self.has_new(typ) {
            return true;
        }
        let Some((_, path)) = self.join.iter().find(|(t, _)| *t == typ) else {
            return false;
        };
        // oci-spec shows each kind by its name under /proc/PID/ns.
        let own = PathBuf::from(format!("/proc/self/ns/{typ}"));
        same_namespace(path, &own) == Some(false)
    }

    pub fn has_new(&self, typ: LinuxNamespaceType) -> bool {
        self.new.contains(flag(typ))
    }

    /// Whether the init joins an existing namespace of this kind by path.
    pub fn joins(&self, typ: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(t, _)| *t == typ)
    }

    pub fn writes_id_maps(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// The host uid and gid that root of the container's user namespace maps to, if it
    /// has one of its own: files the init opens once it is that root belong to them. For
    /// a new namespace the spec's maps say; for a joined one the spec's maps if given (as
    /// runc 1.1 asks), else the maps of the process whose /proc/PID/ns/user is joined.
    pub fn root_on_host(&self, spec: &Spec) -> Result<Option<(u32, u32)>> {
        let linux = spec.linux().as_ref();
        let uid_maps = linux.and_then(|l| l.uid_mappings().as_ref());
        let gid_maps = linux.and_then(|l| l.gid_mappings().as_ref());
        let from_spec = |maps: Option<&Vec<LinuxIdMapping>>| {
            maps?
                .iter()
                .find(|m| m.size() > 0 && m.container_id() == 0)
                .map(|m| m.host_id())
        };
        if self.writes_id_maps() || (self.joins(LinuxNamespaceType::User) && uid_maps.is_some()) {
            return Ok(from_spec(uid_maps).zip(from_spec(gid_maps)));
        }
        let Some((_, path)) = self
            .join
            .iter()
            .find(|(t, _)| *t == LinuxNamespaceType::User)
        else {
            return Ok(None);
        };
        let proc_dir = path
            .strip_prefix("/proc")
            .ok()
            .and_then(|rest| rest.components().next())
            .filter(|pid| path.ends_with("ns/user") && pid.as_os_str() != "self")
            .map(|pid| Path::new("/proc").join(pid));
        let Some(proc_dir) = proc_dir else {
            return Err(Error::Config(format!(
                "linux.uidMappings: joining the user namespace at {} needs uidMappings and gidMappings",
                path.display()
            )));
        };
        let root_of = |name: &str| -> Result<Option<u32>> {
            let file = proc_dir.join(name);
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io("read", &file, e))?;
            Ok(host_of_root(&text))
        };
        Ok(root_of("uid_map")?.zip(root_of("gid_map")?))
    }

    pub fn write_id_maps(&self, pid: i32, spec: &Spec) -> Result<()> {
        if !self.writes_id_maps() {
            return Ok(());
        }
        let linux = spec.linux().as_ref();
        for (name, maps) in [
            ("uid_map", linux.and_then(|l| l.uid_mappings().as_ref())),
            ("gid_map", linux.and_then(|l| l.gid_mappings().as_ref())),
        ] {
            let file = PathBuf::from(format!("/proc/{pid}/{name}"));
            let text = id_map_text(maps.map(|m| m.as_slice()).unwrap_or_default());
            if text.is_empty() {
                let field = if name == "uid_map" {
                    "uidMappings"
                } else {
                    "gidMappings"
                };
                return Err(Error::Config(format!(
                    "linux.{field}: a new user namespace needs at least one mapping"
                )));
            }
            std::fs::write(&file, text).map_err(|e| Error::io("write", file, e))?;
        }
        Ok(())
    }

    /// In the child: joins the namespaces given by path, then creates the ones the clone did
    /// not (the cgroup namespace, and everything after a joined user namespace).
    pub fn enter(&self) -> StepResult<()> {
        for (typ, path) in &self.join {
            let f = File::open(path).step_path(&format!("open {typ} namespace"), path)?;
            nix::sched::setns(f.as_fd(), flag(*typ))
                .step_path(&format!("join {typ} namespace"), path)?;
        }
        let mut rest = if self.needs_intermediate() {
            self.new - CloneFlags::CLONE_NEWUSER
        } else {
            CloneFlags::empty()
        };
        rest -= CloneFlags::CLONE_NEWCGROUP;
        if !rest.is_empty() {
            nix::sched::unshare(rest).step("create namespaces")?;
        }
        Ok(())
    }

    /// In a user namespace of its own, the init takes uid and gid 0 of that namespace (the
    /// ids the maps give it, where the host's root is usually unmapped), as runc does:
    /// files it creates and mounts it makes then belong to the container's root, and an
    /// unmapped owner would fail them with EOVERFLOW.
    pub fn become_root(&self) -> StepResult<()> {
        let user = LinuxNamespaceType::User;
        if !self.has_new(user) && !self.joins(user) {
            return Ok(());
        }
        let root_gid = nix::unistd::Gid::from_raw(0);
        let root_uid = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresgid(root_gid, root_gid, root_gid)
            .step("linux.gidMappings: take gid 0 of the user namespace (is it mapped?)")?;
        // The host's groups mean nothing inside; a namespace that denies setgroups keeps them.
        let _ = nix::unistd::setgroups(&[]);
        nix::unistd::setresuid(root_uid, root_uid, root_uid)
            .step("linux.uidMappings: take uid 0 of the user namespace (is it mapped?)")?;
        Ok(())
    }

    /// The cgroup namespace, created once the init is in its cgroup.
    pub fn enter_cgroup(&self) -> StepResult<()> {
        if self.new.contains(CloneFlags::CLONE_NEWCGROUP) {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).step("create cgroup namespace")?;
        }
        Ok(())
    }
}

pub fn flag(typ: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(typ as libc::c_int)
}

/// Whether two namespace files (`/proc/PID/ns/...` or bind mounts of them) name the same
/// namespace; None when either cannot be read.
pub fn same_namespace(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    Some(id(a)? == id(b)?)
}

/// The outside id of inside id 0 in the text of a /proc/PID/uid_map or gid_map.
pub fn host_of_root(map: &str) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut f = line.split_whitespace().map(|n| n.parse::<u32>().ok());
        let (inside, outside, count) = (f.next()??, f.next()??, f.next()??);
        (inside == 0 && count > 0).then_some(outside)
    })
}

pub fn id_map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn new_namespaces_go_into_the_clone_except_cgroup() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"},{"type":"cgroup"}]}}"#,
        );
        let ns = Namespaces::from_spec(&s).unwrap();
        let f = CloneFlags::from_bits_retain(ns.clone_flags());
        assert!(f.contains(
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS
        ));
        assert!(!f.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(!ns.needs_intermediate());
    }

    #[test]
    fn joining_a_pid_namespace_needs_an_intermediate() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid","path":"/proc/self/ns/pid"},{"type":"mount"}]}}"#,
        );
        let ns = Namespaces::from_spec(&s).unwrap();
        assert!(ns.needs_intermediate());
        assert_eq!(ns.clone_flags(), 0);
    }

    #[test]
    fn missing_namespace_path_names_the_field() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"mount"},{"type":"network","path":"/nonexistent/ns"}]}}"#,
        );
        let err = Namespaces::from_spec(&s).unwrap_err().to_string();
        assert_eq!(
            err,
            "linux.namespaces[1].path: /nonexistent/ns does not exist"
        );
    }

    #[test]
    fn root_on_host_comes_from_the_maps() {
        let new_userns = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"user"}],
                "uidMappings":[{"containerID":1,"hostID":5000,"size":10},{"containerID":0,"hostID":100000,"size":1}],
                "gidMappings":[{"containerID":0,"hostID":200000,"size":65536}]}}"#,
        );
        let ns = Namespaces::from_spec(&new_userns).unwrap();
        assert_eq!(
            ns.root_on_host(&new_userns).unwrap(),
            Some((100000, 200000))
        );

        let host = spec(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"}]}}"#);
        let ns = Namespaces::from_spec(&host).unwrap();
        assert_eq!(ns.root_on_host(&host).unwrap(), None);

        assert_eq!(
            host_of_root("         0     100000      65536\n"),
            Some(100000)
        );
        assert_eq!(
            host_of_root("1 2000 5\n0 3000 1\n"),
            Some(3000),
            "the line of inside id 0, wherever it stands"
        );
        assert_eq!(host_of_root("1 2000 5\n"), None);
    }

    #[test]
    fn joining_a_user_namespace_outside_proc_needs_the_maps() {
        let tmp = tempfile::tempdir().unwrap();
        let pinned = tmp.path().join("userns");
        std::fs::write(&pinned, "").unwrap();
        let s = spec(&format!(
            r#"{{"ociVersion":"1.0.2","linux":{{"namespaces":[{{"type":"user","path":"{}"}}]}}}}"#,
            pinned.display()
        ));
        let ns = Namespaces::from_spec(&s).unwrap();
        let err = ns.root_on_host(&s).unwrap_err().to_string();
        assert!(
            err.starts_with("linux.uidMappings: joining the user namespace at"),
            "{err}"
        );
    }

    #[test]
    fn id_maps_render_one_line_each() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":100000,"size":65536}]"#).unwrap();
        assert_eq!(id_map_text(&m), "0 100000 65536\n");
    }
}
