//! containerd as a real client: `ctr run --runc-binary` drives the runtime through
//! containerd's runc shim, the way containerd-based platforms use a runc-compatible runtime.

use std::ffi::OsStr;

use berth_tests::{Containerd, busybox, runtime_bin, unique_name};

const IMAGE: &str = "docker.io/library/busybox:latest";

#[test]
fn ctr_runs_the_busybox_image_with_the_runtime() {
    let image = busybox();
    let containerd = Containerd::start();

    containerd
        .ctr([
            OsStr::new("images"),
            OsStr::new("import"),
            image.oci_archive.as_os_str(),
        ])
        .ok("ctr images import");
    let images = containerd.ctr(["images", "ls", "-q"]).ok("ctr images ls");
    assert!(
        images.stdout.lines().any(|name| name == IMAGE),
        "import should name the image {IMAGE}: {images:#?}"
    );

    let runtime = runtime_bin();
    let runc_root = containerd.private_dir("runc");
    let fifo_dir = containerd.private_dir("fifo");
    let id = unique_name("ctr");
    let run = containerd.ctr([
        OsStr::new("run"),
        OsStr::new("--rm"),
        OsStr::new("--runc-binary"),
        runtime.as_os_str(),
        OsStr::new("--runc-root"),
        runc_root.as_os_str(),
        OsStr::new("--fifo-dir"),
        fifo_dir.as_os_str(),
        OsStr::new(IMAGE),
        OsStr::new(&id),
        OsStr::new("sh"),
        OsStr::new("-c"),
        OsStr::new("echo hello; exit 3"),
    ]);

    assert_eq!(
        run.code,
        3,
        "ctr run should return the container's exit code: {run:#?}\n{}",
        containerd.log()
    );
    assert_eq!(run.stdout.trim(), "hello", "{run:#?}");
    let left = containerd
        .ctr(["containers", "ls", "-q"])
        .ok("ctr containers ls");
    assert!(
        !left.stdout.contains(&id),
        "--rm should remove the container: {left:#?}"
    );
}
