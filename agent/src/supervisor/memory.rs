//! What a supervisor keeps resident while its task runs. Starting containers runs most of
//! the runtime library once (spec parsing, mounts, cgroups, seccomp); after that the
//! supervisor only waits, copies logs and writes its status. Releasing the start-up pages
//! from its page tables leaves resident what the waiting touches.

use std::ffi::c_void;

/// Unmaps the clean file-backed pages (program and library code, read-only data) from
/// this process and returns free heap to the kernel. The pages stay in the page cache, so
/// the few the supervisor still runs fault back in without I/O.
pub fn release_startup_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in clean_file_mappings(&smaps) {
        // SAFETY: the range is a whole mapping of this process that is file-backed,
        // private, not writable and has no private (anonymous) pages: dropping its page
        // table entries loses nothing, the next access reads the same file pages again.
        unsafe { libc::madvise(start as *mut c_void, end - start, libc::MADV_DONTNEED) };
        // SAFETY: as above; MADV_RANDOM only changes how faults read ahead.
        unsafe { libc::madvise(start as *mut c_void, end - start, libc::MADV_RANDOM) };
    }
    // SAFETY: malloc_trim only returns free memory at the top of glibc's heaps.
    unsafe { libc::malloc_trim(0) };
}

/// (start, end) of every mapping in `smaps` that can be dropped and read again unchanged:
/// backed by a file, private, without write permission, and with no page of its own
/// (relocated read-only data has been written to and must stay).
fn clean_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-').and_then(|(s, e)| {
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
            ))
        }) {
            let perms = fields.next().unwrap_or_default();
            let path = fields.nth(3).unwrap_or_default();
            let droppable = path.starts_with('/')
                && perms.starts_with('r')
                && &perms[1..2] == "-"
                && perms.ends_with('p');
            current = droppable.then_some((start, end));
            continue;
        }
        match (first, current) {
            ("Anonymous:", Some(range)) => {
                if fields.next() == Some("0") {
                    out.push(range);
                }
                current = None;
            }
            ("VmFlags:", _) => current = None,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5600-5700 r--p 00000000 08:01 42 /usr/bin/berth-supervisor
Rss:                 320 kB
Anonymous:             0 kB
5700-5a00 r-xp 00100000 08:01 42 /usr/bin/berth-supervisor
Rss:                2408 kB
Anonymous:             0 kB
5a00-5a40 r--p 00400000 08:01 42 /usr/bin/berth-supervisor
Rss:                 268 kB
Anonymous:           268 kB
5a40-5a41 rw-p 00440000 08:01 42 /usr/bin/berth-supervisor
Anonymous:             4 kB
6000-6100 rw-p 00000000 00:00 0 [heap]
Anonymous:           376 kB
7000-7001 r--p 00000000 00:00 0 [vvar]
Anonymous:             0 kB
7100-7200 r-xs 00000000 08:01 43 /dev/shm/shared
Anonymous:             0 kB
7300-7400 r-xp 00000000 08:01 44 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_read_only_file_mappings_are_dropped() {
        assert_eq!(
            clean_file_mappings(SMAPS),
            [(0x5600, 0x5700), (0x5700, 0x5a00), (0x7300, 0x7400)],
            "not the relocated data, the writable data, the heap, vvar or a shared mapping"
        );
    }
}
