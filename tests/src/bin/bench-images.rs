//! The Debian minbase image (images/debian/build) made ready to run, in one run that
//! alternates: `berth image import` of its OCI layout (blob copied in and verified, layer
//! unpacked into a snapshot, synced), GNU `tar -xzf` of the same layer into a directory,
//! `umoci unpack` of the layout, and `berth image unpack` (a full bundle, as umoci makes).
//! Then the root filesystem of a further container, mounted from the stored image.
//! Prints medians and ratios to tar.
//!
//! Nothing is deleted until the end (about 0.6 GB a round): ext4 without a journal, as on
//! our VMs, skips inodes freed in the last few minutes (up to about five) when it
//! allocates new ones, and a round after a deletion would measure that. For the same
//! reason, run it when nothing has deleted many files in the last five minutes (a test
//! run, an earlier bench).
//!
//! Usage: bench-images [RUNS]   (default 5; run as root)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_runtime::image::{Store, unmount};
use berth_tests::{berth_bin, target_dir, workspace_root};
use serde_json::Value;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let debian = target_dir().join("test-images/debian");
    let status = Command::new(workspace_root().join("images/debian/build"))
        .arg(&debian)
        .status()
        .expect("run images/debian/build");
    assert!(status.success(), "images/debian/build failed");
    let layout = debian.join("oci");
    let layer = layer_blob(&layout);
    let source = format!("{}:latest", layout.display());
    let berth = berth_bin();
    let work = tempfile::Builder::new()
        .prefix("bench-images-")
        .tempdir()
        .expect("temp dir");
    let w = work.path();

    let names = [
        "berth image import",
        "tar -xzf (the layer)",
        "umoci unpack",
        "berth image unpack",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let mut mounts = Vec::new();
    for i in 0..runs + 1 {
        let state = w.join(format!("state-{i}"));
        let took = [
            time(|| {
                run(Command::new(&berth).arg("--state-dir").arg(&state).args([
                    "image",
                    "import",
                    &source,
                    "--tag",
                    "debian:bench",
                ]))
            }),
            time(|| {
                let dir = w.join(format!("tar-{i}"));
                fs::create_dir(&dir).expect("mkdir");
                run(Command::new("tar")
                    .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xzf"])
                    .arg(&layer)
                    .arg("-C")
                    .arg(&dir))
            }),
            time(|| {
                run(Command::new("umoci")
                    .args(["unpack", "--image", &source])
                    .arg(w.join(format!("umoci-{i}"))))
            }),
            time(|| {
                run(Command::new(&berth)
                    .arg("--state-dir")
                    .arg(&state)
                    .args(["image", "unpack", "debian:bench"])
                    .arg(w.join(format!("bundle-{i}"))))
            }),
        ];
        // The first round warms the page cache for everyone alike.
        if i > 0 {
            for (k, t) in took.into_iter().enumerate() {
                times[k].push(t);
            }
        }

        // A container's rootfs from the image just imported (not its first container).
        let store = Store::open(&state).expect("open the store");
        let image = store.resolve("debian:bench").expect("resolve");
        for n in 0..2 {
            let root = w.join(format!("container-{i}-{n}"));
            let target = root.join("rootfs");
            fs::create_dir_all(&target).expect("mkdir");
            let start = Instant::now();
            store
                .mount_rootfs(&image, &root.join("upper"), &root.join("work"), &target)
                .expect("mount_rootfs");
            let took = start.elapsed();
            unmount(&target).expect("unmount");
            if n == 1 && i > 0 {
                mounts.push(took);
            }
        }
    }

    let medians: Vec<f64> = times.iter_mut().map(|t| median_ms(t)).collect();
    let tar = medians[1];
    let size = fs::metadata(&layer).map(|m| m.len()).unwrap_or(0);
    println!(
        "Debian bookworm minbase, one {:.1} MB tar+gzip layer; median of {runs} alternating runs",
        size as f64 / 1e6
    );
    println!("{:<34} {:>10} {:>10}", "", "median ms", "vs tar");
    for (name, m) in names.iter().zip(&medians) {
        println!("{name:<34} {m:>10.1} {:>9.2}x", m / tar);
    }
    let mount = median_ms(&mut mounts);
    println!(
        "{:<34} {mount:>10.2} {:>9.4}x",
        "berth rootfs mount (2nd container)",
        mount / tar
    );
}

/// The path of the layout's only layer blob.
fn layer_blob(layout: &Path) -> PathBuf {
    let read = |p: PathBuf| -> Value {
        serde_json::from_slice(&fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .expect("JSON")
    };
    let blob = |digest: &Value| {
        layout.join("blobs/sha256").join(
            digest
                .as_str()
                .expect("a digest")
                .trim_start_matches("sha256:"),
        )
    };
    let index = read(layout.join("index.json"));
    let manifest = read(blob(&index["manifests"][0]["digest"]));
    blob(&manifest["layers"][0]["digest"])
}

fn run(command: &mut Command) {
    let out = command.output().expect("spawn");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median_ms(t: &mut [Duration]) -> f64 {
    t.sort();
    t[t.len() / 2].as_secs_f64() * 1000.0
}
