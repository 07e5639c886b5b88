//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only
//! paths. Every path inside the rootfs is opened relative to it (see [`resolve`]).

pub mod cgroupfs;
pub mod devices;
pub mod mounts;
pub mod resolve;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use crate::cgroups::Cgroup;
use crate::process::step::{Step, StepResult};

/// Makes the new mount namespace private to the container (or as rootfsPropagation says),
/// turns the rootfs into a mount point and mounts the spec's mounts and devices on it.
/// `join_cgroup` runs before the first mount that shows the container's cgroup, which
/// must exist by then. Returns an fd of the rootfs, through which everything later is
/// resolved.
pub fn prepare(
    spec: &Spec,
    rootfs: &Path,
    cgroup: Option<&Cgroup>,
    join_cgroup: &mut dyn FnMut() -> StepResult<()>,
) -> StepResult<OwnedFd> {
    let linux = spec.linux().as_ref();
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some("shared") => MsFlags::MS_SHARED,
        Some("private") => MsFlags::MS_PRIVATE,
        Some("unbindable") => MsFlags::MS_UNBINDABLE,
        Some("slave") | Some("") | None => MsFlags::MS_SLAVE,
        Some(other) => return Err(format!("linux.rootfsPropagation: unknown mode {other:?}")),
    };
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | propagation,
        None::<&str>,
    )
    .step("make / private in the container's mount namespace")?;
    nix::mount::mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step_path("bind the rootfs onto itself", rootfs)?;
    // pivot_root refuses a new root whose parent mount is shared.
    let _ = nix::mount::mount(
        None::<&str>,
        rootfs,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    );

    let root: OwnedFd = File::open(rootfs).step_path("open rootfs", rootfs)?.into();
    let mut has_devpts = false;
    let mut dev_mounted = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(format!(
                "mounts[{i}].destination: {} is not absolute",
                dest.display()
            ));
        }
        if mounts::shows_cgroup(m) {
            join_cgroup()?;
        }
        mounts::mount_one(root.as_fd(), m, cgroup)
            .map_err(|e| format!("mounts[{i}] {}: {e}", dest.display()))?;
        if m.typ().as_deref() == Some("devpts") {
            has_devpts = true;
        }
        if dest == Path::new("/dev") {
            dev_mounted = true;
        }
    }
    if dev_mounted {
        for node in devices::default_nodes() {
            devices::create(root.as_fd(), &node)
                .map_err(|e| format!("create device {}: {e}", node.path.display()))?;
        }
    }
    for (i, d) in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let node = devices::node_from_spec(d);
        devices::create(root.as_fd(), &node)
            .map_err(|e| format!("linux.devices[{i}] {}: {e}", node.path.display()))?;
    }
    if dev_mounted {
        devices::create_links(root.as_fd(), has_devpts).step("create /dev links")?;
    }
    Ok(root)
}

/// Makes the rootfs the process's root: pivot_root and a lazy unmount of the old root, or
/// with `no_pivot` a move mount and chroot (for ramdisk roots, where pivot_root fails).
pub fn enter(root: &OwnedFd, rootfs: &Path, no_pivot: bool) -> StepResult<()> {
    nix::unistd::fchdir(root.as_fd()).step_path("chdir to rootfs", rootfs)?;
    if no_pivot {
        nix::mount::mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .step("move the rootfs mount to /")?;
        nix::unistd::chroot(".").step("chroot")?;
    } else {
        nix::unistd::pivot_root(".", ".").step_path("pivot_root", rootfs)?;
        // The old root now sits on top of the new one; detach it and everything below.
        nix::mount::mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .step("make the old root a slave")?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH).step("unmount the old root")?;
    }
    nix::unistd::chdir("/").step("chdir /")?;
    Ok(())
}

/// Makes the process's working directory when the image lacks it, as runc and Docker do
/// (an ECS `workingDirectory` need not exist in the image): each missing directory is
/// root's, mode 0755 whatever the umask. Runs once the container sees only its root, so
/// the path (symlinks, `..`) resolves inside it.
pub fn create_cwd(cwd: &Path) -> StepResult<()> {
    let mut path = PathBuf::from("/");
    for part in cwd.components().skip_while(|c| c == &Component::RootDir) {
        path.push(part);
        match std::fs::create_dir(&path) {
            Ok(()) => std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("process.cwd: chmod {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("process.cwd: create {}: {e}", path.display())),
        }
    }
    Ok(())
}

/// What the spec asks for once the container sees only its rootfs: sysctls, read-only
/// and masked paths, a read-only root.
pub fn finish(spec: &Spec) -> StepResult<()> {
    let root: OwnedFd = File::open("/").step("open /")?.into();
    if let Some(linux) = spec.linux() {
        // Sysctls first: /proc/sys is among the read-only paths of most specs (runc's,
        // podman's, Docker's), as runc orders it.
        if let Some(sysctl) = linux.sysctl() {
            let mut keys: Vec<_> = sysctl.keys().collect();
            keys.sort();
            for key in keys {
                let file = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
                std::fs::write(&file, &sysctl[key])
                    .map_err(|e| format!("linux.sysctl[{key}]: write {}: {e}", file.display()))?;
            }
        }
        for (i, p) in linux.readonly_paths().iter().flatten().enumerate() {
            match mounts::make_readonly(root.as_fd(), Path::new(p)) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                r => r.map_err(|e| format!("linux.readonlyPaths[{i}] {p}: {e}"))?,
            }
        }
        for (i, p) in linux.masked_paths().iter().flatten().enumerate() {
            mounts::mask(root.as_fd(), Path::new(p))
                .map_err(|e| format!("linux.maskedPaths[{i}] {p}: {e}"))?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let keep = mounts::locked_flags("/");
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
            None::<&str>,
        )
        .step("root.readonly: remount / read-only")?;
    }
    Ok(())
}
