//! create: read the bundle, make the cgroup, clone the init and leave it waiting on the
//! exec fifo. A failure at any step removes everything the earlier steps made.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Process, Spec,
};

use super::hooks::run_stage;
use super::state::{Saved, now_rfc3339, proc_start_time, write_volatile};
use super::{Container, validate_id};
use crate::cgroups::{Cgroup, Host};
use crate::error::{Error, Result};
use crate::process::namespaces::Namespaces;
use crate::process::{InitConfig, Stage, spawn_init};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    /// Start the process as soon as the init is set up, with no exec fifo and no separate
    /// `start` (for `run`, where nothing can come in between).
    pub start_now: bool,
}

/// Reads `<bundle>/config.json`; errors name the file, the field and the position.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let de = &mut serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if field == "." {
            Error::Config(format!("{}: {inner}", path.display()))
        } else {
            Error::Config(format!("{}: {field}: {inner}", path.display()))
        }
    })
}

impl Container {
    pub fn create(root: &Path, opts: &CreateOptions) -> Result<Container> {
        let bundle = checked_bundle(opts)?;
        let spec = load_spec(&bundle)?;
        Container::create_in_bundle(root, opts, bundle, spec)
    }

    /// `create` with the bundle's config.json already read (by `run`, which looks at it
    /// first).
    pub fn create_with_spec(root: &Path, opts: &CreateOptions, spec: Spec) -> Result<Container> {
        let bundle = checked_bundle(opts)?;
        Container::create_in_bundle(root, opts, bundle, spec)
    }

    fn create_in_bundle(
        root: &Path,
        opts: &CreateOptions,
        bundle: PathBuf,
        mut spec: Spec,
    ) -> Result<Container> {
        let rootfs = rootfs_of(&spec, &bundle)?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::Config("process: missing in config.json".into()))?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::Config("process.args: must name a program".into()));
        }
        if process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
            return Err(Error::Config(
                "process.terminal: true needs --console-socket".into(),
            ));
        }
        let namespaces = Namespaces::from_spec(&spec)?;
        if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
            crate::security::check_sysctls(sysctl, |kind| namespaces.separate(kind))?;
        }
        let seccomp = spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .map(crate::security::build_seccomp)
            .transpose()?;
        if let Some(p) = spec.process_mut() {
            skip_unsupported_labels(p);
        }

        std::fs::create_dir_all(root).map_err(|e| Error::io("create", root, e))?;
        let dir = root.join(&opts.id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(opts.id.clone()));
            }
            Err(e) => return Err(Error::io("create", &dir, e)),
        }
        let mut cgroup = None;
        let result = create_in(
            &dir,
            opts,
            spec,
            bundle,
            rootfs,
            namespaces,
            seccomp,
            &mut cgroup,
        );
        match result {
            Ok(saved) => Ok(Container {
                root: root.to_path_buf(),
                saved,
            }),
            Err(e) => {
                if let Some(cg) = cgroup {
                    let _ = cg.remove();
                }
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }
}

/// The id checked and the bundle's absolute path, before anything reads the bundle.
fn checked_bundle(opts: &CreateOptions) -> Result<PathBuf> {
    validate_id(&opts.id)?;
    std::fs::canonicalize(&opts.bundle).map_err(|e| Error::io("bundle", &opts.bundle, e))
}

#[allow(clippy::too_many_arguments)]
fn create_in(
    dir: &Path,
    opts: &CreateOptions,
    spec: Spec,
    bundle: PathBuf,
    rootfs: PathBuf,
    namespaces: Namespaces,
    seccomp: Option<crate::security::SeccompFilter>,
    cgroup_out: &mut Option<Cgroup>,
) -> Result<Saved> {
    crate::trace::step("config read");
    let linux = spec.linux().as_ref();
    let host = Host::detect()?;
    let cgroup = Cgroup::new(
        &host,
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &opts.id,
    )?;
    *cgroup_out = Some(cgroup.clone());
    let resources = linux.and_then(|l| l.resources().as_ref()).map(|res| {
        let devices = linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default();
        with_default_device_rules(res, devices)
    });
    let make_cgroup = || -> Result<()> {
        cgroup.create_v1()?;
        if let Some(res) = &resources {
            cgroup.apply(res)?;
        }
        Ok(())
    };
    // Where the init moves itself into v1 hierarchies, the runtime makes them and writes
    // the limits while the init mounts the rootfs (two cores at work instead of one); the
    // init joins before its first cgroup mount, and before anything of the user's runs.
    // The cgroup2 directory comes first: the init is born in it. An init that joins a
    // user namespace moves itself before, while it may still write the host's files.
    use oci_spec::runtime::LinuxNamespaceType::{Mount, User};
    let overlap = !cgroup.v1_self_move_files().is_empty()
        && namespaces.has_new(Mount)
        && !namespaces.writes_id_maps()
        && !namespaces.joins(User);
    let cfg_root_on_host = namespaces.root_on_host(&spec)?;
    cgroup.create_unified()?;
    if !overlap {
        make_cgroup()?;
    }
    crate::trace::step("cgroup created");
    let fifo = if opts.start_now {
        None
    } else {
        let fifo = dir.join("exec.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::io("create exec fifo", &fifo, e.into()))?;
        // The init opens the fifo as root of its user namespace, if it has one.
        if let Some((uid, gid)) = cfg_root_on_host {
            std::os::unix::fs::chown(&fifo, Some(uid), Some(gid))
                .map_err(|e| Error::io("chown exec fifo", &fifo, e))?;
        }
        Some(fifo)
    };
    let console_socket = super::connect_console(opts.console_socket.as_deref())?;

    let mut saved = Saved {
        id: opts.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle,
        rootfs: rootfs.clone(),
        created: now_rfc3339(),
        owner: String::new(),
        cgroup: Some(cgroup.clone()),
        spec,
    };
    let cfg = InitConfig {
        id: opts.id.clone(),
        spec: saved.spec.clone(),
        rootfs,
        namespaces,
        cgroup: Some(cgroup.clone()),
        exec_fifo: fifo,
        console_socket,
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        seccomp,
    };
    let hooks = saved.spec.hooks().clone();
    let saved_for_hooks = saved.clone();
    // Written while the init sets up and put in place once it is ready.
    let mut pending = None;
    let mut state = |stage, pid| -> Result<()> {
        if pending != Some(pid) {
            saved.pid = pid;
            saved.pid_start = proc_start_time(pid).map(|(s, _)| s).unwrap_or(0);
            saved.save_pending(dir)?;
            pending = Some(pid);
        }
        match stage {
            Stage::Setup => Ok(()),
            Stage::Ready => Saved::commit_pending(dir),
        }
    };
    let pid = spawn_init(
        &cfg,
        overlap.then_some(&make_cgroup),
        &mut |pid| {
            let mut s = saved_for_hooks.clone();
            s.pid = pid;
            let creating = serde_json::to_string(&s.oci_state(super::Status::Creating))
                .map_err(|e| Error::Config(e.to_string()))?;
            if let Some(h) = &hooks {
                run_stage(
                    "prestart",
                    h.prestart().as_deref().unwrap_or_default(),
                    &creating,
                )?;
                run_stage(
                    "createRuntime",
                    h.create_runtime().as_deref().unwrap_or_default(),
                    &creating,
                )?;
            }
            Ok(creating)
        },
        &mut state,
    )?;
    crate::trace::step("init ready");
    if let Some(pid_file) = &opts.pid_file {
        write_volatile(pid_file, pid.to_string().as_bytes())?;
    }
    Ok(saved)
}

/// The device rules of the spec, followed by access to the devices every container gets
/// (and those it lists in linux.devices): a deny-all rule must not lock a container out
/// of /dev/null.
pub fn with_default_device_rules(res: &LinuxResources, devices: &[LinuxDevice]) -> LinuxResources {
    let Some(rules) = res.devices() else {
        return res.clone();
    };
    let mut rules = rules.clone();
    let rule = |typ, major, minor: Option<i64>| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(Some(major));
        r.set_minor(minor);
        r.set_access(Some("rwm".to_string()));
        r
    };
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(rule(LinuxDeviceType::C, major, Some(minor)));
    }
    // Every pty of the container's devpts.
    rules.push(rule(LinuxDeviceType::C, 136, None));
    for d in devices {
        let typ = if d.typ() == LinuxDeviceType::B {
            LinuxDeviceType::B
        } else {
            LinuxDeviceType::C
        };
        rules.push(rule(typ, d.major(), Some(d.minor())));
    }
    let mut out = res.clone();
    out.set_devices(Some(rules));
    out
}

fn rootfs_of(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::Config("root: missing in config.json".into()))?;
    let path = bundle.join(root.path());
    match std::fs::canonicalize(&path) {
        Ok(p) if p.is_dir() => Ok(p),
        Ok(p) => Err(Error::Config(format!(
            "root.path: {} is not a directory",
            p.display()
        ))),
        Err(e) => Err(Error::Config(format!("root.path: {}: {e}", path.display()))),
    }
}

/// Labels for security modules this host does not run are skipped, loudly, so that the
/// process runs as it would under runc there. berth-runtime applies AppArmor profiles
/// but not SELinux labels, and says so on an SELinux host.
pub(super) fn skip_unsupported_labels(process: &mut Process) {
    if process.apparmor_profile().is_some() && !crate::security::apparmor_enabled() {
        eprintln!(
            "berth-runtime: warning: process.apparmorProfile: AppArmor is not enabled on this host, skipped"
        );
        process.set_apparmor_profile(None);
    }
    if process.selinux_label().is_some() {
        if Path::new("/sys/fs/selinux/enforce").exists() {
            eprintln!(
                "berth-runtime: warning: process.selinuxLabel: not applied: berth-runtime does not support SELinux"
            );
        } else {
            eprintln!(
                "berth-runtime: warning: process.selinuxLabel: SELinux is not enabled on this host, skipped"
            );
        }
        process.set_selinux_label(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_all_keeps_the_default_devices_usable() {
        let res: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        let out = with_default_device_rules(&res, &[]);
        let rules: Vec<String> = out
            .devices()
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(rules[0], "a *:* rwm");
        assert!(rules.contains(&"c 1:3 rwm".to_string()), "{rules:?}");
        assert!(rules.contains(&"c 136:* rwm".to_string()), "{rules:?}");
    }

    #[test]
    fn no_device_rules_means_no_device_cgroup_changes() {
        let res: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":5}}"#).unwrap();
        assert!(with_default_device_rules(&res, &[]).devices().is_none());
    }
}
