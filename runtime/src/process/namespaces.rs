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

    pub fn writes_id_maps(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// The host uid and gid that root of a new user namespace maps to, if the maps give
    /// root one: files the init must open after it becomes that root belong to them.
    pub fn root_on_host(&self, spec: &Spec) -> Option<(u32, u32)> {
        if !self.writes_id_maps() {
            return None;
        }
        let linux = spec.linux().as_ref()?;
        let host_of_zero = |maps: Option<&Vec<LinuxIdMapping>>| {
            maps?
                .iter()
                .find(|m| m.size() > 0 && m.container_id() == 0)
                .map(|m| m.host_id())
        };
        Some((
            host_of_zero(linux.uid_mappings().as_ref())?,
            host_of_zero(linux.gid_mappings().as_ref())?,
        ))
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
        if !self.has_new(user) && !self.join.iter().any(|(t, _)| *t == user) {
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
    fn id_maps_render_one_line_each() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":100000,"size":65536}]"#).unwrap();
        assert_eq!(id_map_text(&m), "0 100000 65536\n");
    }
}
