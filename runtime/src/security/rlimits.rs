//! Resource limits (`process.rlimits`) and the OOM killer score
//! (`process.oomScoreAdj`) of the container process.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use super::{RlimitValue, SecurityError};

/// Sets every rlimit in order. The whole list is checked first (soft above
/// hard, a type listed twice) so a bad config changes nothing.
pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<(), SecurityError> {
    check_rlimits(rlimits)?;
    for rlimit in rlimits {
        set_rlimit(rlimit)?;
    }
    Ok(())
}

/// Rejects what the kernel would reject with a less helpful errno, and
/// duplicates, which the runtime spec says must be an error.
fn check_rlimits(rlimits: &[PosixRlimit]) -> Result<(), SecurityError> {
    let mut seen = HashSet::new();
    for (i, rlimit) in rlimits.iter().enumerate() {
        let name = rlimit_name(rlimit.typ());
        if !seen.insert(name.clone()) {
            return Err(SecurityError::config(
                format!("process.rlimits[{i}].type"),
                format!("{name} is listed more than once"),
            ));
        }
        if rlimit.soft() > rlimit.hard() {
            return Err(SecurityError::config(
                format!("process.rlimits[{name}]"),
                format!(
                    "soft limit {} is above the hard limit {}",
                    RlimitValue(rlimit.soft()),
                    RlimitValue(rlimit.hard())
                ),
            ));
        }
    }
    Ok(())
}

fn set_rlimit(rlimit: &PosixRlimit) -> Result<(), SecurityError> {
    let name = rlimit_name(rlimit.typ());
    let field = format!("process.rlimits[{name}]");
    let resource = resource_of(rlimit.typ());
    let (soft, hard) = (rlimit.soft(), rlimit.hard());
    let (_, current_hard) =
        getrlimit(resource).map_err(|errno| SecurityError::sys(&field, "getrlimit", errno))?;

    match setrlimit(resource, soft, hard) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) if hard > current_hard => Err(hard_raise_error(
            resource,
            name,
            RlimitValue(current_hard),
            RlimitValue(hard),
        )),
        Err(errno) => Err(SecurityError::sys(
            field,
            format!(
                "setrlimit soft {} hard {}",
                RlimitValue(soft),
                RlimitValue(hard)
            ),
            errno,
        )),
    }
}

/// Explains an EPERM from raising a hard limit. Without CAP_SYS_RESOURCE
/// that is the reason; with it, only RLIMIT_NOFILE above fs.nr_open fails.
fn hard_raise_error(
    resource: Resource,
    name: String,
    current: RlimitValue,
    asked: RlimitValue,
) -> SecurityError {
    let has_cap = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    if !has_cap {
        return SecurityError::HardLimitRaise {
            resource: name,
            current,
            asked,
        };
    }
    let reason = match (resource, read_nr_open()) {
        (Resource::RLIMIT_NOFILE, Some(nr_open)) if asked.0 > nr_open => {
            format!("cannot raise the hard limit to {asked}: it is above fs.nr_open ({nr_open})")
        }
        _ => format!("cannot raise the hard limit from {current} to {asked}: permission denied"),
    };
    SecurityError::config(format!("process.rlimits[{name}]"), reason)
}

fn read_nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The name as written in the config, e.g. `RLIMIT_NOFILE`.
fn rlimit_name(typ: PosixRlimitType) -> String {
    typ.to_string()
}

fn resource_of(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Writes `/proc/self/oom_score_adj`. Lowering the score below its current
/// value needs CAP_SYS_RESOURCE, so that failure is spelled out.
pub fn set_oom_score_adj(value: i32) -> Result<(), SecurityError> {
    const FIELD: &str = "process.oomScoreAdj";
    const PATH: &str = "/proc/self/oom_score_adj";
    if !(-1000..=1000).contains(&value) {
        return Err(SecurityError::config(
            FIELD,
            format!("{value} is outside -1000..1000"),
        ));
    }
    let write = OpenOptions::new()
        .write(true)
        .open(PATH)
        .and_then(|mut file| file.write_all(value.to_string().as_bytes()));
    match write {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EACCES) => {
            let current = std::fs::read_to_string(PATH)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string());
            Err(SecurityError::config(
                FIELD,
                format!(
                    "cannot lower the score from {current} to {value} without CAP_SYS_RESOURCE"
                ),
            ))
        }
        Err(err) => Err(SecurityError::sys(
            FIELD,
            format!("writing {value} to {PATH}"),
            Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::test_support::{fail, in_child};
    use oci_spec::runtime::PosixRlimitBuilder;

    fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .expect("rlimit")
    }

    #[test]
    fn every_type_maps_to_its_kernel_resource() {
        let cases = [
            (PosixRlimitType::RlimitCpu, libc::RLIMIT_CPU, "RLIMIT_CPU"),
            (
                PosixRlimitType::RlimitFsize,
                libc::RLIMIT_FSIZE,
                "RLIMIT_FSIZE",
            ),
            (
                PosixRlimitType::RlimitData,
                libc::RLIMIT_DATA,
                "RLIMIT_DATA",
            ),
            (
                PosixRlimitType::RlimitStack,
                libc::RLIMIT_STACK,
                "RLIMIT_STACK",
            ),
            (
                PosixRlimitType::RlimitCore,
                libc::RLIMIT_CORE,
                "RLIMIT_CORE",
            ),
            (PosixRlimitType::RlimitRss, libc::RLIMIT_RSS, "RLIMIT_RSS"),
            (
                PosixRlimitType::RlimitNproc,
                libc::RLIMIT_NPROC,
                "RLIMIT_NPROC",
            ),
            (
                PosixRlimitType::RlimitNofile,
                libc::RLIMIT_NOFILE,
                "RLIMIT_NOFILE",
            ),
            (
                PosixRlimitType::RlimitMemlock,
                libc::RLIMIT_MEMLOCK,
                "RLIMIT_MEMLOCK",
            ),
            (PosixRlimitType::RlimitAs, libc::RLIMIT_AS, "RLIMIT_AS"),
            (
                PosixRlimitType::RlimitLocks,
                libc::RLIMIT_LOCKS,
                "RLIMIT_LOCKS",
            ),
            (
                PosixRlimitType::RlimitSigpending,
                libc::RLIMIT_SIGPENDING,
                "RLIMIT_SIGPENDING",
            ),
            (
                PosixRlimitType::RlimitMsgqueue,
                libc::RLIMIT_MSGQUEUE,
                "RLIMIT_MSGQUEUE",
            ),
            (
                PosixRlimitType::RlimitNice,
                libc::RLIMIT_NICE,
                "RLIMIT_NICE",
            ),
            (
                PosixRlimitType::RlimitRtprio,
                libc::RLIMIT_RTPRIO,
                "RLIMIT_RTPRIO",
            ),
            (
                PosixRlimitType::RlimitRttime,
                libc::RLIMIT_RTTIME,
                "RLIMIT_RTTIME",
            ),
        ];
        for (typ, kernel, name) in cases {
            assert_eq!(resource_of(typ) as i64, kernel as i64, "{name}");
            assert_eq!(rlimit_name(typ), name);
        }
    }

    #[test]
    fn soft_above_hard_names_the_rlimit() {
        let err = set_rlimits(&[rlimit(PosixRlimitType::RlimitNofile, 2048, 1024)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.rlimits[RLIMIT_NOFILE]: soft limit 2048 is above the hard limit 1024"
        );
    }

    #[test]
    fn a_type_listed_twice_is_an_error() {
        let err = set_rlimits(&[
            rlimit(PosixRlimitType::RlimitCore, 0, 0),
            rlimit(PosixRlimitType::RlimitCore, 0, 0),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.rlimits[1].type: RLIMIT_CORE is listed more than once"
        );
    }

    #[test]
    fn unlimited_reads_as_unlimited() {
        assert_eq!(RlimitValue(libc::RLIM_INFINITY).to_string(), "unlimited");
        assert_eq!(RlimitValue(1024).to_string(), "1024");
    }

    #[test]
    fn lowering_nofile_shows_in_getrlimit() {
        let code = in_child(|| {
            if let Err(e) = set_rlimits(&[rlimit(PosixRlimitType::RlimitNofile, 256, 512)]) {
                return fail(1, e);
            }
            match getrlimit(Resource::RLIMIT_NOFILE) {
                Ok((256, 512)) => 0,
                other => fail(2, format!("getrlimit gave {other:?}")),
            }
        });
        assert_eq!(code, 0);
    }

    /// Raising the hard limit is a CAP_SYS_RESOURCE privilege. Where the cap
    /// is missing the error must say so; where it is present the raise must
    /// work.
    #[test]
    fn raising_hard_nofile_needs_cap_sys_resource() {
        let code = in_child(|| {
            let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
                return fail(1, "getrlimit");
            };
            // Lower it first so the raise stays under fs.nr_open.
            let lowered = hard.min(4096) / 2;
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, lowered, lowered) {
                return fail(2, e);
            }
            let asked = lowered * 2;
            let result = set_rlimits(&[rlimit(PosixRlimitType::RlimitNofile, asked, asked)]);
            let has_cap = caps::has_cap(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_RESOURCE,
            );
            match (has_cap, result) {
                (Ok(false), Err(e)) => {
                    let want = format!(
                        "process.rlimits[RLIMIT_NOFILE]: cannot raise the hard limit \
                         from {lowered} to {asked} without CAP_SYS_RESOURCE"
                    );
                    if e.to_string() == want {
                        0
                    } else {
                        fail(3, format!("got {e:?}, want {want}"))
                    }
                }
                (Ok(true), Ok(())) => match getrlimit(Resource::RLIMIT_NOFILE) {
                    Ok((s, h)) if s == asked && h == asked => 0,
                    other => fail(4, format!("getrlimit gave {other:?}")),
                },
                (cap, result) => fail(5, format!("cap {cap:?} but set_rlimits gave {result:?}")),
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn oom_score_adj_out_of_range_is_refused() {
        let err = set_oom_score_adj(1001).unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.oomScoreAdj: 1001 is outside -1000..1000"
        );
    }

    #[test]
    fn raising_oom_score_adj_shows_in_proc() {
        let code = in_child(|| {
            if let Err(e) = set_oom_score_adj(500) {
                return fail(1, e);
            }
            match std::fs::read_to_string("/proc/self/oom_score_adj") {
                Ok(s) if s.trim() == "500" => 0,
                other => fail(2, format!("{other:?}")),
            }
        });
        assert_eq!(code, 0);
    }
}
