//! The busybox test image, built once per test run by `images/busybox/build`.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

/// The outputs of `images/busybox/build`.
#[derive(Debug)]
pub struct BusyboxImage {
    /// A root filesystem to copy into bundles.
    pub rootfs: PathBuf,
    /// An OCI image layout whose tag `latest` is the image.
    pub oci_layout: PathBuf,
    /// The layout as an OCI archive that containerd imports as
    /// `docker.io/library/busybox:latest`.
    pub oci_archive: PathBuf,
}

/// Builds the image into `<target dir>/test-images/busybox` on first use and returns it.
///
/// Test binaries run in parallel processes, so the build holds an exclusive flock; the
/// script itself skips the work when its last build is current.
pub fn busybox() -> &'static BusyboxImage {
    static IMAGE: OnceLock<BusyboxImage> = OnceLock::new();
    IMAGE.get_or_init(build_busybox)
}

fn build_busybox() -> BusyboxImage {
    let images = crate::target_dir().join("test-images");
    fs::create_dir_all(&images).unwrap_or_else(|e| panic!("create {}: {e}", images.display()));
    let lock_path = images.join("busybox.lock");
    let lock_file =
        File::create(&lock_path).unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("flock {}: {e}", lock_path.display()));

    let out = images.join("busybox");
    let script = crate::workspace_root().join("images/busybox/build");
    let result = Command::new("sh")
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        result.status.success(),
        "{} {} failed ({}): {}",
        script.display(),
        out.display(),
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    BusyboxImage {
        rootfs: out.join("rootfs"),
        oci_layout: out.join("oci"),
        oci_archive: out.join("busybox-oci.tar"),
    }
}
