//! The image store, checked as a user would: images imported and pulled with `berth image`
//! (from a real docker-registry, pushed with skopeo), unpacked trees compared with what
//! `umoci unpack` makes of the same image, hostile layers refused without a trace, and
//! container root filesystems mounted without copying a file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use berth_runtime::image::unmount;
use berth_tests::oci::{
    self, Blob, Layer, Layout, put_blob, put_manifest, write_index, write_layout,
};
use berth_tests::registry::{Auth, Registry, TokenServer};
use berth_tests::tree::{assert_same_tree, walk};
use berth_tests::{Berth, busybox, unique_name, wait_for};
use serde_json::{Value, json};
use tempfile::TempDir;

fn tempdir(label: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-{label}-"))
        .tempdir()
        .expect("create a temp dir")
}

/// `umoci unpack --image LAYOUT:REF` into a fresh bundle; returns the bundle's parent.
fn umoci_unpack(layout: &Path, reference: &str) -> (TempDir, PathBuf) {
    let dir = tempdir("umoci");
    let bundle = dir.path().join("bundle");
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{reference}", layout.display()))
        .arg(&bundle)
        .output()
        .expect("run umoci (Debian package umoci)");
    assert!(out.status.success(), "umoci unpack: {out:?}");
    (dir, bundle.join("rootfs"))
}

/// `berth image unpack REF` into a fresh directory; returns it and the bundle path.
fn berth_unpack(berth: &Berth, reference: &str) -> (TempDir, PathBuf) {
    let dir = tempdir("bundle");
    let bundle = dir.path().join("bundle");
    berth
        .run([
            "image",
            "unpack",
            reference,
            bundle.to_str().expect("utf-8 path"),
        ])
        .ok("image unpack");
    (dir, bundle)
}

fn only_image(berth: &Berth) -> Value {
    let images = berth.images();
    assert_eq!(images.len(), 1, "expected one image: {images:?}");
    images.into_iter().next().expect("one image")
}

/// The store holds nothing: no names, blobs, snapshots or work in progress.
#[track_caller]
fn assert_store_empty(berth: &Berth) {
    assert!(
        berth.images().is_empty(),
        "images left: {:?}",
        berth.images()
    );
    for dir in ["blobs/sha256", "snapshots", "tmp"] {
        assert!(
            berth.entries(dir).is_empty(),
            "{dir} is not empty: {:?}",
            berth.entries(dir)
        );
    }
}

// --- imports and reference trees ------------------------------------------------------

#[test]
fn busybox_layout_unpacks_as_umoci_unpacks_it() {
    let image = busybox();
    let berth = Berth::new();
    let source = format!("{}:latest", image.oci_layout.display());
    let out = berth
        .run(["image", "import", &source, "--tag", "busybox:test"])
        .ok("image import");
    assert!(
        out.stdout.contains("docker.io/library/busybox:test"),
        "{out:?}"
    );
    let listed = only_image(&berth);
    assert_eq!(listed["repository"], "docker.io/library/busybox");
    assert_eq!(listed["tag"], "test");

    let (_keep, bundle) = berth_unpack(&berth, "busybox:test");
    let (_keep_ref, reference) = umoci_unpack(&image.oci_layout, "latest");
    assert_same_tree(&reference, &bundle.join("rootfs"));

    // Snapshots and bundles hold the image's setuid binaries: only root may reach them.
    for dir in [berth.state_dir().join("images"), bundle.clone()] {
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is mode {mode:o}", dir.display());
    }

    let config: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).expect("config.json"))
            .expect("config.json is JSON");
    assert_eq!(config["process"]["args"], json!(["sh"]));
    assert_eq!(config["process"]["terminal"], json!(false));
    assert_eq!(config["root"]["path"], "rootfs");
}

#[test]
fn debian_minbase_unpacks_as_umoci_unpacks_it() {
    let debian = berth_tests::target_dir().join("test-images/debian");
    assert!(
        debian.join(".done").is_file(),
        "no Debian image at {}: tests/run-all builds it with images/debian/build",
        debian.display()
    );
    let layout = debian.join("oci");
    let berth = Berth::new();
    berth
        .run(["image", "import", &format!("{}:latest", layout.display())])
        .ok("image import");
    let digest = only_image(&berth)["digest"]
        .as_str()
        .expect("a digest")
        .to_string();
    let (_keep, bundle) = berth_unpack(&berth, &digest);
    let (_keep_ref, reference) = umoci_unpack(&layout, "latest");
    assert_same_tree(&reference, &bundle.join("rootfs"));
}

/// Three layers with everything a layer can say: whiteouts of files and directories, an
/// opaque directory, entries under a lower layer's relative and absolute symlinks, a
/// hardlink to a lower file, setuid, owners, a device node, a fifo, xattrs, and entries
/// that replace a file with a directory and the other way round.
fn layered_image(dir: &Path) -> Layout {
    // CAP_NET_RAW in the effective and permitted sets, version 2 of the format.
    let cap_net_raw: &[u8] = &[
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let base = Layer::new()
        .dir("etc", 0o755)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .file(
            "etc/group",
            0o644,
            b"root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .file("etc/hostname", 0o644, b"base\n")
        .dir("usr", 0o755)
        .dir("usr/lib", 0o755)
        .file("usr/lib/libc.so", 0o755, b"libc v1")
        .symlink("lib", "usr/lib")
        .symlink("lib64", "/usr/lib")
        .dir("bin", 0o755)
        .file("bin/tool", 0o755, b"#!/bin/sh\necho tool\n")
        .dir("var", 0o755)
        .dir("var/cache", 0o755)
        .file("var/cache/a", 0o644, b"a")
        .dir("var/cache/sub", 0o755)
        .file("var/cache/sub/b", 0o644, b"b")
        .dir("opt", 0o755)
        .dir("opt/old", 0o755)
        .file("opt/old/x", 0o644, b"x")
        .dir("becomes-file", 0o755)
        .file("becomes-file/child", 0o644, b"child")
        .file("becomes-dir", 0o644, b"file");
    let middle = Layer::new()
        .whiteout("etc", "hostname")
        .dir("var/cache", 0o755)
        .opaque("var/cache")
        .file("var/cache/new", 0o644, b"new")
        .file("lib/x.so", 0o755, b"through a relative symlink")
        .file("lib64/y.so", 0o755, b"through an absolute symlink")
        .hardlink("bin/tool2", "bin/tool")
        .raw(
            "bin/su-tool",
            tar::EntryType::Regular,
            0o4755,
            (0, 0),
            "",
            b"setuid",
            (0, 0),
        )
        .owned_file("home/app/data", 0o640, (1000, 1000), b"app data")
        .char_device("dev/null2", 1, 3)
        .fifo("run/fifo")
        .file_with_xattrs(
            "bin/ping",
            0o755,
            b"ping",
            &[
                ("security.capability", cap_net_raw),
                ("user.comment", b"hello"),
            ],
        )
        .whiteout("opt", "old")
        .file("becomes-file", 0o600, b"now a file")
        .dir("becomes-dir", 0o700)
        .file("becomes-dir/inside", 0o644, b"inside");
    let top = Layer::new()
        .file("usr/lib/libc.so", 0o755, b"libc v2")
        .file("etc/hostname", 0o644, b"top\n")
        .whiteout("lib", "x.so");
    write_layout(
        dir,
        &[
            Blob::gzip(&base.tar()),
            Blob::gzip(&middle.tar()),
            Blob::plain(&top.tar()),
        ],
        json!({"Cmd": ["/bin/tool"], "User": "app", "WorkingDir": "/home/app"}),
    )
}

#[test]
fn layered_image_unpacks_as_umoci_unpacks_it() {
    let dir = tempdir("layout");
    let layout = layered_image(dir.path());
    let berth = Berth::new();
    berth
        .run([
            "image",
            "import",
            &format!("{}:latest", layout.dir.display()),
            "--tag",
            "layered:1",
        ])
        .ok("image import");
    let (_keep, bundle) = berth_unpack(&berth, "layered:1");
    let (_keep_ref, reference) = umoci_unpack(&layout.dir, "latest");
    assert_same_tree(&reference, &bundle.join("rootfs"));

    // What the layers say, checked directly too.
    let rootfs = bundle.join("rootfs");
    assert_eq!(fs::read(rootfs.join("etc/hostname")).unwrap(), b"top\n");
    assert_eq!(
        fs::read(rootfs.join("usr/lib/y.so")).unwrap(),
        b"through an absolute symlink"
    );
    assert!(
        !rootfs.join("usr/lib/x.so").exists(),
        "the top layer deleted lib/x.so"
    );
    assert!(
        fs::symlink_metadata(rootfs.join("lib"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!rootfs.join("var/cache/a").exists() && !rootfs.join("var/cache/sub").exists());
    assert!(rootfs.join("var/cache/new").exists());
    assert!(!rootfs.join("opt/old").exists());
    assert_eq!(
        fs::metadata(rootfs.join("bin/su-tool")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::metadata(rootfs.join("bin/tool2")).unwrap().ino(),
        fs::metadata(rootfs.join("bin/tool")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(rootfs.join("home/app/data")).unwrap().uid(),
        1000
    );
    assert!(
        fs::symlink_metadata(rootfs.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let null2 = fs::symlink_metadata(rootfs.join("dev/null2")).unwrap();
    assert!(null2.file_type().is_char_device());
    assert_eq!(null2.rdev(), libc::makedev(1, 3));
    assert_eq!(
        xattr::get(rootfs.join("bin/ping"), "security.capability")
            .unwrap()
            .unwrap()
            .len(),
        20
    );

    // The user is resolved through the image's own /etc/passwd and /etc/group.
    let config: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["user"],
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10]})
    );
    assert_eq!(config["process"]["cwd"], "/home/app");

    // Lower snapshots are untouched: the deletions are overlay whiteouts in the middle one.
    let store = berth.store();
    let image = store.resolve("layered:1").expect("resolve the image");
    let base = store.snapshot_path(&image.chain_ids[0]);
    let middle = store.snapshot_path(&image.chain_ids[1]);
    assert_eq!(fs::read(base.join("etc/hostname")).unwrap(), b"base\n");
    assert!(base.join("var/cache/a").exists() && base.join("opt/old/x").exists());
    let whiteout = fs::symlink_metadata(middle.join("etc/hostname")).unwrap();
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "{whiteout:?}"
    );
    assert_eq!(
        xattr::get(middle.join("var/cache"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(
        fs::read(middle.join("usr/lib/x.so")).unwrap(),
        b"through a relative symlink"
    );
}

#[test]
fn archives_and_rootfs_tarballs_import_as_the_same_tree() {
    let image = busybox();
    let (_keep_ref, reference) = umoci_unpack(&image.oci_layout, "latest");
    let work = tempdir("archives");
    let berth = Berth::new();

    // The OCI archive names itself through containerd's annotation.
    let out = berth
        .run(["image", "import", image.oci_archive.to_str().unwrap()])
        .ok("import the OCI archive");
    assert!(
        out.stdout.contains("docker.io/library/busybox:latest"),
        "{out:?}"
    );

    // A Docker archive as skopeo writes it, plain and gzip-compressed.
    let docker_archive = work.path().join("busybox-docker.tar");
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(format!("oci:{}:latest", image.oci_layout.display()))
        .arg(format!(
            "docker-archive:{}:busybox:v1",
            docker_archive.display()
        ))
        .output()
        .expect("run skopeo");
    assert!(out.status.success(), "skopeo to docker-archive: {out:?}");
    berth
        .run(["image", "import", docker_archive.to_str().unwrap()])
        .ok("import the Docker archive");
    let gz = work.path().join("busybox-docker.tar.gz");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            docker_archive.display(),
            gz.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    berth
        .run([
            "image",
            "import",
            gz.to_str().unwrap(),
            "--tag",
            "busybox:gz",
        ])
        .ok("import the gzip-compressed Docker archive");

    // Root filesystem tarballs, gzip and zstd.
    for (flag, name) in [("--gzip", "rootfs.tar.gz"), ("--zstd", "rootfs.tar.zst")] {
        let tarball = work.path().join(name);
        let out = Command::new("tar")
            .args(["--numeric-owner", flag, "-C"])
            .arg(&image.rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .output()
            .expect("run tar");
        assert!(out.status.success(), "tar: {out:?}");
        berth
            .run([
                "image",
                "import",
                tarball.to_str().unwrap(),
                "--tag",
                &format!("rootfs:{}", &flag[2..]),
            ])
            .ok("import a rootfs tarball");
    }

    for name in [
        "busybox:latest",
        "busybox:v1",
        "busybox:gz",
        "rootfs:gzip",
        "rootfs:zstd",
    ] {
        let (_keep, bundle) = berth_unpack(&berth, name);
        assert_same_tree(&reference, &bundle.join("rootfs"));
    }
    // The same tarball twice is the same image.
    let digests: Vec<String> = berth
        .images()
        .iter()
        .filter(|i| i["repository"] == "docker.io/library/rootfs")
        .map(|i| i["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(digests.len(), 2);
    let tarball = work.path().join("rootfs.tar.gz");
    let out = berth
        .run([
            "image",
            "import",
            tarball.to_str().unwrap(),
            "--output",
            "json",
        ])
        .ok("import again");
    let imported: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(digests.contains(&imported[0]["digest"].as_str().unwrap().to_string()));
}

#[test]
fn two_imports_at_once_share_the_work() {
    let image = busybox();
    let berth = Berth::new();
    let source = format!("{}:latest", image.oci_layout.display());
    let children: Vec<_> = (0..3)
        .map(|i| berth.spawn(["image", "import", &source, "--tag", &format!("busybox:{i}")]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a concurrent import failed: {out:?}");
    }
    assert_eq!(berth.images().len(), 3);
    assert_eq!(berth.entries("snapshots").len(), 1);
    assert!(berth.entries("tmp").is_empty());
}

/// A layer is unpacked while its blob is still being copied in. Here the layout's blob is
/// a fifo that gets its second half only once a file from the first half is in the
/// snapshot being made: an import that copied the whole blob before unpacking it would
/// never get there.
#[test]
fn a_layer_is_unpacked_while_its_blob_arrives() {
    let dir = tempdir("arriving");
    // Incompressible, so that half of the gzip stream inflates to well over a megabyte.
    let mut noise = vec![0u8; 6 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for byte in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    let blob = Blob::gzip(
        &Layer::new()
            .file("early", 0o644, b"first")
            .file("late", 0o644, &noise)
            .tar(),
    );
    let diff_id = blob.diff_id.clone();
    let layout = write_layout(dir.path(), &[blob], json!({}));
    let path = layout.blob_path(&layout.layers[0]);
    let bytes = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();

    let berth = Berth::new();
    let source = layout.dir.to_str().unwrap();
    let mut import = berth.spawn(["image", "import", source, "--tag", "arriving:test"]);
    let early = berth
        .state_dir()
        .join("images/tmp")
        .join(format!("snapshot-{}", &diff_id["sha256:".len()..]))
        .join("early");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut fifo = loop {
        // Non-blocking, so that an import that never opens the blob fails the test.
        match fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(fifo) => break fifo,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                assert!(import.try_wait().unwrap().is_none(), "the import ended");
                assert!(
                    std::time::Instant::now() < deadline,
                    "the blob was never opened"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("open the fifo: {e}"),
        }
    };
    // Back to blocking writes for the halves.
    nix::fcntl::fcntl(
        &fifo,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .unwrap();
    let half = bytes.len() / 2;
    fifo.write_all(&bytes[..half]).unwrap();
    wait_for(
        "a file of the first half in the snapshot being made",
        Duration::from_secs(30),
        || fs::read(&early).ok().filter(|data| data == b"first"),
    );
    assert!(import.try_wait().unwrap().is_none());
    fifo.write_all(&bytes[half..]).unwrap();
    drop(fifo);
    let out = import.wait_with_output().unwrap();
    assert!(out.status.success(), "the import failed: {out:?}");

    let store = berth.store();
    let image = store.resolve("arriving:test").unwrap();
    let snapshot = store.snapshot_path(&image.chain_ids[0]);
    assert!(fs::read(snapshot.join("late")).unwrap() == noise);
    assert!(berth.entries("tmp").is_empty());
}

// --- layer reuse and container root filesystems -----------------------------------------

#[test]
fn shared_layers_are_stored_once_and_a_rootfs_mount_copies_nothing() {
    let image = busybox();
    let berth = Berth::new();
    berth
        .run([
            "image",
            "import",
            &format!("{}:latest", image.oci_layout.display()),
            "--tag",
            "busybox:1",
        ])
        .ok("import busybox");

    // A second image: busybox's own layer blob plus one more layer.
    let dir = tempdir("derived");
    let index: Value =
        serde_json::from_slice(&fs::read(image.oci_layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &fs::read(oci::blob_path(&image.oci_layout, manifest_digest)).unwrap(),
    )
    .unwrap();
    let base_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let base_bytes = fs::read(oci::blob_path(&image.oci_layout, base_digest)).unwrap();
    let base_config: Value = serde_json::from_slice(
        &fs::read(oci::blob_path(
            &image.oci_layout,
            manifest["config"]["digest"].as_str().unwrap(),
        ))
        .unwrap(),
    )
    .unwrap();
    let extra = Layer::new()
        .file("hello.txt", 0o644, b"hello from layer 2")
        .whiteout("etc", "hostname")
        .tar();
    let extra = Blob::gzip(&extra);
    let (base_blob, base_size) = put_blob(dir.path(), &base_bytes);
    let (extra_blob, extra_size) = put_blob(dir.path(), &extra.bytes);
    let diff_ids = vec![
        base_config["rootfs"]["diff_ids"][0]
            .as_str()
            .unwrap()
            .to_string(),
        extra.diff_id.clone(),
    ];
    let config = oci::image_config(oci::host_architecture(), &diff_ids, json!({"Cmd": ["sh"]}));
    let (derived, size) = put_manifest(
        dir.path(),
        &config,
        &[
            (
                base_blob,
                base_size,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (extra_blob, extra_size, extra.media_type),
        ],
    );
    write_index(
        dir.path(),
        vec![
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": derived, "size": size}),
        ],
    );
    berth
        .run([
            "image",
            "import",
            dir.path().to_str().unwrap(),
            "--tag",
            "derived:1",
        ])
        .ok("import the derived image");

    // The base layer is one blob and one snapshot, used by both images.
    assert_eq!(berth.entries("snapshots").len(), 2);
    assert_eq!(
        berth.entries("blobs/sha256").len(),
        6,
        "3 blobs per image, the layer shared"
    );

    let store = berth.store();
    let derived = store.resolve("derived:1").expect("resolve derived:1");
    store
        .lease("task-1", std::slice::from_ref(&derived.digest))
        .expect("lease");
    let base_snapshot = store.snapshot_path(&derived.chain_ids[0]);
    let before = walk(&base_snapshot);

    let containers = tempdir("containers");
    let mut targets = Vec::new();
    for name in ["one", "two"] {
        let root = containers.path().join(name);
        let (upper, work, target) = (root.join("upper"), root.join("work"), root.join("rootfs"));
        fs::create_dir_all(&target).unwrap();
        store
            .mount_rootfs(&derived, &upper, &work, &target)
            .expect("mount the rootfs");
        assert_eq!(
            fs::read_dir(&upper).unwrap().count(),
            0,
            "mounting copied files into {}",
            upper.display()
        );
        // The container sees the snapshot's own file, not a copy.
        assert_eq!(
            fs::metadata(target.join("bin/busybox")).unwrap().ino(),
            fs::metadata(base_snapshot.join("bin/busybox"))
                .unwrap()
                .ino()
        );
        assert_eq!(
            fs::read(target.join("hello.txt")).unwrap(),
            b"hello from layer 2"
        );
        assert!(
            !target.join("etc/hostname").exists(),
            "the whiteout hides etc/hostname"
        );
        targets.push((upper, target));
    }
    fs::write(targets[0].1.join("written"), b"by container one").unwrap();
    assert!(
        targets[0].0.join("written").exists(),
        "writes go to the container's upper directory"
    );
    assert!(
        !targets[1].1.join("written").exists(),
        "containers do not see each other's writes"
    );
    for (_, target) in &targets {
        unmount(target).expect("unmount");
    }
    assert_eq!(
        walk(&base_snapshot),
        before,
        "the snapshot changed under a container"
    );
    store.release("task-1").unwrap();
}

// --- hostile and broken input ---------------------------------------------------------

/// Imports the layout, expects a one-line error naming each of `words`, and a store
/// left as it was.
#[track_caller]
fn assert_import_refused(layout: &Path, words: &[&str]) {
    let berth = Berth::new();
    let out = berth.run(["image", "import", layout.to_str().unwrap()]);
    for word in words {
        out.assert_error_naming(word);
    }
    assert_store_empty(&berth);
}

#[test]
fn a_layer_entry_climbing_out_with_dotdot_is_refused() {
    let dir = tempdir("hostile");
    let name = unique_name("berth-escape");
    let layout = write_layout(
        dir.path(),
        &[Blob::gzip(
            &Layer::new()
                .file(&format!("../../../../../../tmp/{name}"), 0o644, b"x")
                .tar(),
        )],
        json!({}),
    );
    assert_import_refused(
        &layout.dir,
        &[&layout.layers[0], &format!("../tmp/{name}"), ".."],
    );
    assert!(!Path::new("/tmp").join(&name).exists());
}

#[test]
fn an_absolute_layer_entry_is_refused() {
    let dir = tempdir("hostile");
    let host_path = format!("/tmp/{}", unique_name("berth-absolute"));
    let layout = write_layout(
        dir.path(),
        &[Blob::gzip(
            &Layer::new().file(&host_path, 0o644, b"x").tar(),
        )],
        json!({}),
    );
    assert_import_refused(&layout.dir, &[&layout.layers[0], &host_path, "absolute"]);
    assert!(!Path::new(&host_path).exists());
}

#[test]
fn a_symlink_to_a_host_directory_cannot_carry_a_write_out() {
    let canary = tempdir("canary");
    let target = canary.path().to_str().unwrap().to_string();
    // In one layer, and across two (the second written through an overlay).
    let one = tempdir("hostile");
    let layout = write_layout(
        one.path(),
        &[Blob::gzip(
            &Layer::new()
                .symlink("etc", &target)
                .file("etc/passwd", 0o644, b"root::0:0::/:/bin/sh\n")
                .tar(),
        )],
        json!({}),
    );
    assert_import_refused(&layout.dir, &[&layout.layers[0], "etc/passwd"]);
    let two = tempdir("hostile");
    let layout = write_layout(
        two.path(),
        &[
            Blob::gzip(&Layer::new().symlink("etc", &target).tar()),
            Blob::gzip(
                &Layer::new()
                    .file("etc/passwd", 0o644, b"root::0:0::/:/bin/sh\n")
                    .tar(),
            ),
        ],
        json!({}),
    );
    assert_import_refused(&layout.dir, &[&layout.layers[1], "etc/passwd"]);
    assert_eq!(
        fs::read_dir(canary.path()).unwrap().count(),
        0,
        "a file was written on the host"
    );
}

#[test]
fn a_hardlink_to_a_host_file_is_refused() {
    let canary = tempdir("canary");
    let secret = canary.path().join("secret");
    fs::write(&secret, b"host secret").unwrap();
    for target in [
        secret.to_str().unwrap().to_string(),
        format!("../../../../../../..{}", secret.display()),
    ] {
        let dir = tempdir("hostile");
        let layout = write_layout(
            dir.path(),
            &[Blob::gzip(&Layer::new().hardlink("stolen", &target).tar())],
            json!({}),
        );
        assert_import_refused(
            &layout.dir,
            &[&layout.layers[0], "stolen", "hardlink target"],
        );
    }
    assert_eq!(
        fs::metadata(&secret).unwrap().nlink(),
        1,
        "the host file got a second name"
    );
}

#[test]
fn a_whiteout_cannot_delete_outside_the_image() {
    let canary = tempdir("canary");
    fs::write(canary.path().join("keep"), b"keep").unwrap();
    let climbing = tempdir("hostile");
    let layout = write_layout(
        climbing.path(),
        &[
            Blob::gzip(&Layer::new().file("a", 0o644, b"a").tar()),
            Blob::gzip(
                &Layer::new()
                    .file(
                        &format!("../../../../../..{}/.wh.keep", canary.path().display()),
                        0o644,
                        b"",
                    )
                    .tar(),
            ),
        ],
        json!({}),
    );
    assert_import_refused(&layout.dir, &[&layout.layers[1], ".wh.keep"]);

    // Through a symlink the whiteout resolves inside the image, where there is nothing to
    // delete: the import succeeds and the host file stays.
    let through = tempdir("hostile");
    let layout = write_layout(
        through.path(),
        &[
            Blob::gzip(
                &Layer::new()
                    .symlink("link", canary.path().to_str().unwrap())
                    .tar(),
            ),
            Blob::gzip(&Layer::new().whiteout("link", "keep").tar()),
        ],
        json!({}),
    );
    let berth = Berth::new();
    berth
        .run(["image", "import", layout.dir.to_str().unwrap()])
        .ok("import");
    assert_eq!(fs::read(canary.path().join("keep")).unwrap(), b"keep");
}

#[test]
fn a_layer_that_does_not_match_its_digest_is_refused() {
    let dir = tempdir("broken");
    let layout = write_layout(
        dir.path(),
        &[Blob::gzip(
            &Layer::new().file("a", 0o644, b"some content").tar(),
        )],
        json!({}),
    );
    let path = layout.blob_path(&layout.layers[0]);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    assert_import_refused(
        &layout.dir,
        &[&format!("blob {}: content has digest", layout.layers[0])],
    );
}

#[test]
fn a_truncated_gzip_layer_is_refused() {
    let dir = tempdir("broken");
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let full = Blob::gzip(&Layer::new().file("big", 0o644, &big).tar());
    let truncated = Blob {
        bytes: full.bytes[..full.bytes.len() / 2].to_vec(),
        diff_id: full.diff_id.clone(),
        media_type: full.media_type,
    };
    let layout = write_layout(dir.path(), &[truncated], json!({}));
    assert_import_refused(&layout.dir, &[&format!("layer {}", layout.layers[0])]);
}

#[test]
fn a_layer_whose_diff_id_is_wrong_is_refused() {
    let dir = tempdir("broken");
    let mut blob = Blob::gzip(&Layer::new().file("a", 0o644, b"a").tar());
    blob.diff_id = oci::sha256(b"something else");
    let layout = write_layout(dir.path(), &[blob], json!({}));
    assert_import_refused(&layout.dir, &[&layout.layers[0], "the image config says"]);
}

#[test]
fn a_manifest_naming_a_missing_blob_is_refused() {
    let dir = tempdir("broken");
    let layout = write_layout(
        dir.path(),
        &[
            Blob::gzip(&Layer::new().file("a", 0o644, b"a").tar()),
            Blob::gzip(&Layer::new().file("b", 0o644, b"b").tar()),
        ],
        json!({}),
    );
    fs::remove_file(layout.blob_path(&layout.layers[1])).unwrap();
    assert_import_refused(
        &layout.dir,
        &[&format!("blob {}: not found", layout.layers[1])],
    );
}

#[test]
fn bad_input_is_refused_in_one_line() {
    let berth = Berth::new();
    berth
        .run(["image", "pull", "Bad/Name"])
        .assert_error_naming("Bad/Name");
    berth
        .run(["image", "rm", "nothing-here"])
        .assert_error_naming("\"nothing-here\" not found");
    berth
        .run(["image", "import", "/nonexistent/layout"])
        .assert_error_naming("/nonexistent/layout");
    berth
        .run(["image", "pull", "busybox", "--platform", "linux"])
        .assert_error_naming("\"linux\"");
    let image = busybox();
    berth
        .run([
            "image",
            "import",
            image.oci_layout.to_str().unwrap(),
            "--tag",
            "Upper:case",
        ])
        .assert_error_naming("Upper:case");
    berth
        .run([
            "image",
            "import",
            &format!("{}:nope", image.oci_layout.display()),
        ])
        .assert_error_naming("no image named \"nope\"");
    berth
        .run([
            "image",
            "import",
            image.oci_layout.to_str().unwrap(),
            "--tag",
            "bb:1",
        ])
        .ok("import");
    let dir = tempdir("bundle");
    fs::create_dir(dir.path().join("rootfs")).unwrap();
    berth
        .run(["image", "unpack", "bb:1", dir.path().to_str().unwrap()])
        .assert_error_naming("rootfs: already exists");
}

// --- the command line -----------------------------------------------------------------

#[test]
fn the_state_dir_flag_goes_before_or_after_the_subcommand_or_in_the_environment() {
    let image = busybox();
    let state = tempdir("state");
    let out = Command::new(berth_tests::berth_bin())
        .args(["image", "import"])
        .arg(&image.oci_layout)
        .args(["--tag", "busybox:flags", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(berth_tests::berth_bin())
        .args(["image", "ls", "--output", "json"])
        .env("BERTH_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["tag"], "busybox:flags".split(':').nth(1).unwrap());
    let out = Command::new(berth_tests::berth_bin())
        .arg("--state-dir")
        .arg(state.path())
        .args(["--output", "table", "image", "ls"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("REPOSITORY"), "{text}");
    assert!(text.contains("docker.io/library/busybox"), "{text}");
}

#[test]
fn rm_refuses_an_image_a_task_uses_and_prune_keeps_what_leases_name() {
    let image = busybox();
    let berth = Berth::new();
    berth
        .run([
            "image",
            "import",
            image.oci_layout.to_str().unwrap(),
            "--tag",
            "busybox:used",
        ])
        .ok("import");
    let store = berth.store();
    let used = store.resolve("busybox:used").unwrap();
    store
        .lease("task-7", std::slice::from_ref(&used.digest))
        .unwrap();

    berth
        .run(["image", "rm", "busybox:used"])
        .assert_error_naming("task-7");
    assert_eq!(berth.images().len(), 1);
    let out = berth
        .run(["image", "rm", "--force", "busybox:used"])
        .ok("rm --force");
    assert!(
        out.stdout
            .contains("untagged docker.io/library/busybox:used"),
        "{out:?}"
    );
    assert!(berth.images().is_empty());
    berth.run(["image", "prune"]).ok("prune");
    assert_eq!(
        berth.entries("blobs/sha256").len(),
        3,
        "the lease keeps the content"
    );
    assert_eq!(berth.entries("snapshots").len(), 1);

    store.release("task-7").unwrap();
    let out = berth
        .run(["image", "prune", "--output", "json"])
        .ok("prune");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["blobs_removed"], 3);
    assert_eq!(report["snapshots_removed"], 1);
    assert_store_empty(&berth);

    // Without a lease, rm by digest prefix frees the content at once.
    berth
        .run([
            "image",
            "import",
            image.oci_layout.to_str().unwrap(),
            "--tag",
            "busybox:gone",
        ])
        .ok("import");
    let digest = only_image(&berth)["digest"].as_str().unwrap().to_string();
    berth
        .run(["image", "rm", &digest["sha256:".len()..][..12]])
        .ok("rm by id");
    assert_store_empty(&berth);
}

#[test]
fn an_unpacked_bundle_runs_under_runc_with_runc_specs_defaults() {
    let image = busybox();
    let berth = Berth::new();
    berth
        .run([
            "image",
            "import",
            image.oci_layout.to_str().unwrap(),
            "--tag",
            "busybox:run",
        ])
        .ok("import");
    let (_keep, bundle) = berth_unpack(&berth, "busybox:run");

    // Everything but the process (and the hostname) is what `runc spec` writes.
    let reference = tempdir("runc-spec");
    let out = Command::new(berth_tests::reference_runtime_bin())
        .args(["spec", "--bundle"])
        .arg(reference.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "runc spec: {out:?}");
    let mut theirs: Value =
        serde_json::from_slice(&fs::read(reference.path().join("config.json")).unwrap()).unwrap();
    let mut ours: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    for spec in [&mut theirs, &mut ours] {
        let object = spec.as_object_mut().unwrap();
        for key in ["process", "hostname", "annotations"] {
            object.remove(key);
        }
    }
    assert_eq!(ours, theirs);

    let config_path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    config["process"]["args"] = json!(["/bin/echo", "hello from the image"]);
    fs::write(&config_path, config.to_string()).unwrap();
    let root = tempdir("runc-root");
    let id = unique_name("berth-image");
    let out = Command::new(berth_tests::reference_runtime_bin())
        .arg("--root")
        .arg(root.path())
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "runc run: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from the image"
    );
}

// --- a real registry ------------------------------------------------------------------

/// Busybox's layout pushed as `busybox:latest`.
fn registry_with_busybox(auth: Auth, creds: Option<(&str, &str)>) -> Registry {
    let registry = Registry::start(auth);
    registry.push(
        &busybox().oci_layout,
        "latest",
        "busybox:latest",
        false,
        creds,
    );
    registry
}

fn layout_manifest_digest(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn pull_by_tag_and_by_digest() {
    let registry = registry_with_busybox(Auth::Anonymous, None);
    let digest = registry.manifest_digest("busybox:latest", None);
    assert_eq!(digest, layout_manifest_digest(&busybox().oci_layout));

    let berth = Berth::new();
    let reference = format!("{}/busybox:latest", registry.host());
    let out = berth.run(["image", "pull", &reference]).ok("pull by tag");
    assert!(out.stdout.contains(&digest), "{out:?}");
    let listed = only_image(&berth);
    assert_eq!(listed["repository"], format!("{}/busybox", registry.host()));
    assert_eq!(listed["tag"], "latest");
    assert_eq!(listed["digest"], digest);
    let (_keep, bundle) = berth_unpack(&berth, &reference);
    let (_keep_ref, reference_tree) = umoci_unpack(&busybox().oci_layout, "latest");
    assert_same_tree(&reference_tree, &bundle.join("rootfs"));

    let pinned = Berth::new();
    let by_digest = format!("{}/busybox@{digest}", registry.host());
    pinned
        .run(["image", "pull", &by_digest])
        .ok("pull by digest");
    let listed = only_image(&pinned);
    assert_eq!(listed["tag"], "<none>");
    assert_eq!(listed["digest"], digest);

    let missing = format!("{}/busybox@sha256:{}", registry.host(), "0".repeat(64));
    let out = pinned.run(["image", "pull", &missing]);
    out.assert_error_naming(&registry.host());
    assert!(out.stderr.contains("404"), "{out:?}");
}

#[test]
fn pull_chooses_the_platform_from_an_image_index() {
    // An index of two manifests, amd64 and arm64, over the same busybox layer.
    let source = busybox();
    let dir = tempdir("multi");
    let layout = dir.path();
    let manifest: Value = serde_json::from_slice(
        &fs::read(oci::blob_path(
            &source.oci_layout,
            &layout_manifest_digest(&source.oci_layout),
        ))
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0].clone();
    let layer_bytes = fs::read(oci::blob_path(
        &source.oci_layout,
        layer["digest"].as_str().unwrap(),
    ))
    .unwrap();
    put_blob(layout, &layer_bytes);
    let config: Value = serde_json::from_slice(
        &fs::read(oci::blob_path(
            &source.oci_layout,
            manifest["config"]["digest"].as_str().unwrap(),
        ))
        .unwrap(),
    )
    .unwrap();
    let diff_ids: Vec<String> = vec![
        config["rootfs"]["diff_ids"][0]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    let layers = [(
        layer["digest"].as_str().unwrap().to_string(),
        layer["size"].as_u64().unwrap(),
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )];
    let mut entries = Vec::new();
    let mut digests = std::collections::HashMap::new();
    for arch in ["amd64", "arm64"] {
        let config = oci::image_config(arch, &diff_ids, json!({"Cmd": ["sh"]}));
        let (digest, size) = put_manifest(layout, &config, &layers);
        digests.insert(arch, digest.clone());
        entries.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let (index_digest, index_size) = put_blob(layout, index.to_string().as_bytes());
    write_index(
        layout,
        vec![json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest, "size": index_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        })],
    );
    let registry = Registry::start(Auth::Anonymous);
    registry.push(layout, "latest", "multi:latest", true, None);
    let reference = format!("{}/multi:latest", registry.host());

    let berth = Berth::new();
    berth
        .run(["image", "pull", &reference])
        .ok("pull the index");
    let host = oci::host_architecture();
    assert_eq!(only_image(&berth)["digest"], digests[host].as_str());
    let other = if host == "amd64" { "arm64" } else { "amd64" };
    let out = berth
        .run([
            "image",
            "pull",
            &format!("{}/multi@{}", registry.host(), digests[other]),
        ])
        .ok("pull the other platform by digest");
    assert!(out.stdout.contains(&digests[other]), "{out:?}");
    // Both platforms share the layer: one download, one snapshot.
    assert_eq!(
        registry.blob_downloads(layer["digest"].as_str().unwrap()),
        1
    );
    assert_eq!(berth.entries("snapshots").len(), 1);

    let arm = Berth::new();
    arm.run(["image", "pull", "--platform", "linux/arm64", &reference])
        .ok("pull --platform linux/arm64");
    let image = arm.store().resolve(&reference).unwrap();
    assert_eq!(image.config.architecture().to_string(), "arm64");
    assert_eq!(image.digest.to_string(), digests["arm64"]);

    let out = arm.run(["image", "pull", "--platform", "linux/s390x", &reference]);
    out.assert_error_naming("linux/s390x");
    assert!(
        out.stderr.contains("linux/amd64") && out.stderr.contains("linux/arm64"),
        "{out:?}"
    );
}

#[test]
fn pull_with_basic_auth_uses_the_docker_config() {
    let (user, password) = ("alice", "s3cret:pw");
    let registry = registry_with_busybox(
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        },
        Some((user, password)),
    );
    let reference = format!("{}/busybox:latest", registry.host());
    let berth = Berth::new();
    berth
        .run(["image", "pull", &reference])
        .assert_error_naming("no credentials for 127.0.0.1");
    berth.login(&registry.host(), user, "wrong");
    berth
        .run(["image", "pull", &reference])
        .assert_error_naming("401");
    assert_store_empty(&berth);

    berth.login(&registry.host(), user, password);
    berth
        .run(["image", "pull", &reference])
        .ok("pull with credentials");
    assert_eq!(only_image(&berth)["tag"], "latest");

    // ~/.docker/config.json, found through HOME when DOCKER_CONFIG is not set.
    let home = tempdir("home");
    fs::create_dir(home.path().join(".docker")).unwrap();
    fs::copy(
        berth.docker_config_dir().join("config.json"),
        home.path().join(".docker/config.json"),
    )
    .unwrap();
    let other = Berth::new();
    let out = other
        .command(["image", "pull", &reference])
        .env_remove("DOCKER_CONFIG")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn pull_with_a_bearer_token_the_registry_verifies() {
    let (user, password) = ("bob", "token-pw");
    let server = TokenServer::start(user, password);
    let registry = registry_with_busybox(
        Auth::Token {
            server: Arc::clone(&server),
        },
        Some((user, password)),
    );
    let reference = format!("{}/busybox:latest", registry.host());
    let berth = Berth::new();
    berth
        .run(["image", "pull", &reference])
        .assert_error_naming("no credentials for 127.0.0.1");
    berth.login(&registry.host(), user, "wrong");
    berth
        .run(["image", "pull", &reference])
        .assert_error_naming("refused the stored credentials");

    let before = server.issued().len();
    berth.login(&registry.host(), user, password);
    berth
        .run(["image", "pull", &reference])
        .ok("pull with a token");
    let issued = server.issued();
    assert!(
        issued[before..]
            .iter()
            .any(|t| t == "bob repository:busybox:pull"),
        "no pull token was issued to berth: {issued:?}"
    );
    let (_keep, bundle) = berth_unpack(&berth, &reference);
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}

/// An image with one large, incompressible layer, pushed as `big:latest`; with the
/// digests of the manifest and layer the registry serves.
fn registry_with_big_image(megabytes: usize) -> (Registry, String, String) {
    let dir = tempdir("big");
    let mut data = vec![0u8; megabytes << 20];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let layer = Layer::new().file("blob.bin", 0o644, &data).tar();
    let layout = write_layout(dir.path(), &[Blob::plain(&layer)], json!({"Cmd": ["sh"]}));
    let registry = Registry::start(Auth::Anonymous);
    registry.push(&layout.dir, "latest", "big:latest", false, None);
    let manifest = registry.manifest("big:latest");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("a layer")
        .to_string();
    let digest = registry.manifest_digest("big:latest", None);
    (registry, digest, layer)
}

#[test]
fn concurrent_pulls_download_each_blob_once() {
    let (registry, digest, layer) = registry_with_big_image(48);
    let berth = Berth::new();
    let reference = format!("{}/big:latest", registry.host());
    let pulls: Vec<_> = (0..2)
        .map(|_| berth.spawn(["image", "pull", &reference]))
        .collect();
    for pull in pulls {
        let out = pull.wait_with_output().unwrap();
        assert!(out.status.success(), "a concurrent pull failed: {out:?}");
    }
    assert_eq!(
        registry.blob_downloads(&layer),
        1,
        "{}",
        registry.access_log()
    );
    assert_eq!(berth.entries("snapshots").len(), 1);
    assert_eq!(only_image(&berth)["digest"], digest.as_str());
}

#[test]
fn an_interrupted_pull_completes_when_run_again() {
    let (registry, digest, layer) = registry_with_big_image(128);
    let berth = Berth::new();
    let reference = format!("{}/big:latest", registry.host());
    let hex = &layer["sha256:".len()..];
    let partial = berth
        .state_dir()
        .join("images/tmp")
        .join(format!("blob-{hex}"));
    let mut pull = berth.spawn(["image", "pull", &reference]);
    // Polled closely: on loopback the whole download takes a fraction of a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !fs::metadata(&partial).is_ok_and(|m| m.len() > 0) {
        assert!(
            pull.try_wait().unwrap().is_none(),
            "the pull ended before it could be interrupted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the layer download never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    pull.kill().unwrap();
    pull.wait().unwrap();
    assert!(
        !berth
            .state_dir()
            .join("images/blobs/sha256")
            .join(hex)
            .exists(),
        "a half-downloaded blob became visible"
    );
    assert!(berth.images().is_empty());

    berth.run(["image", "pull", &reference]).ok("pull again");
    assert_eq!(only_image(&berth)["digest"], digest.as_str());
    let store = berth.store();
    let image = store.resolve(&reference).unwrap();
    let snapshot = store.snapshot_path(&image.chain_ids[0]);
    assert_eq!(
        fs::metadata(snapshot.join("blob.bin")).unwrap().len(),
        128 << 20
    );
    assert!(!partial.exists());
}
