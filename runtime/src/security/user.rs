//! The identity of the container process (`process.user`): groups, gid, uid
//! and umask.

use nix::errno::Errno;
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use oci_spec::runtime::User;

use super::SecurityError;

/// Switches to `process.user`: supplementary groups, then gid, then uid
/// (the uid last, since changing groups needs the privileges it drops).
///
/// The permitted capabilities survive the uid change and the effective set
/// is refilled from them afterwards, so `apply_capabilities` can still
/// shape every set once this returns.
pub fn switch_user(user: &User) -> Result<(), SecurityError> {
    set_groups(user.additional_gids().as_deref().unwrap_or_default())?;

    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(|errno| id_error("process.user.gid", user.gid(), errno))?;

    caps::securebits::set_keepcaps(true).map_err(|cause| SecurityError::Capabilities {
        field: "process.user.uid".into(),
        op: "keeping capabilities across the uid change".into(),
        cause,
    })?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(|errno| id_error("process.user.uid", user.uid(), errno))?;

    // Leaving uid 0 empties the effective set even with keepcaps.
    let permitted = caps::read(None, caps::CapSet::Permitted);
    permitted
        .and_then(|set| caps::set(None, caps::CapSet::Effective, &set))
        .map_err(|cause| SecurityError::Capabilities {
            field: "process.user.uid".into(),
            op: "restoring the effective capabilities after the uid change".into(),
            cause,
        })
}

/// Sets `process.user.umask`; without one the inherited umask stays, as the
/// runtime spec asks. Bits outside 0o777 have no meaning and are ignored.
pub fn set_umask(user: &User) {
    if let Some(mask) = user.umask() {
        umask(Mode::from_bits_truncate(mask & 0o777));
    }
}

fn set_groups(gids: &[u32]) -> Result<(), SecurityError> {
    const FIELD: &str = "process.user.additionalGids";
    let groups: Vec<Gid> = gids.iter().copied().map(Gid::from_raw).collect();
    match setgroups(&groups) {
        Ok(()) => Ok(()),
        // A user namespace can forbid setgroups; with no groups asked for
        // there is nothing to lose by leaving the inherited list alone.
        Err(Errno::EPERM) if setgroups_denied() => {
            if groups.is_empty() {
                Ok(())
            } else {
                Err(SecurityError::config(
                    FIELD,
                    "cannot set supplementary groups: setgroups is denied in this user namespace",
                ))
            }
        }
        Err(Errno::EINVAL) => Err(SecurityError::config(
            FIELD,
            format!("{gids:?}: a group is not mapped in the container's user namespace"),
        )),
        Err(errno) => Err(SecurityError::sys(
            FIELD,
            format!("setgroups {gids:?}"),
            errno,
        )),
    }
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

fn id_error(field: &str, id: u32, errno: Errno) -> SecurityError {
    match errno {
        Errno::EINVAL => SecurityError::config(
            field,
            format!("{id} is not mapped in the container's user namespace"),
        ),
        _ => SecurityError::sys(field, format!("switching to {id}"), errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::test_support::{fail, in_child};
    use nix::unistd::{getegid, geteuid, getgid, getgroups, getuid};
    use oci_spec::runtime::UserBuilder;

    #[test]
    fn switched_user_shows_in_getuid_getgid_getgroups() {
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(1000u32)
            .additional_gids(vec![10u32, 20])
            .build()
            .expect("user");
        let code = in_child(|| {
            if let Err(e) = switch_user(&user) {
                return fail(1, e);
            }
            let ids = (getuid(), geteuid(), getgid(), getegid());
            let want = (
                Uid::from_raw(1000),
                Uid::from_raw(1000),
                Gid::from_raw(1000),
                Gid::from_raw(1000),
            );
            if ids != want {
                return fail(2, format!("ids {ids:?}"));
            }
            match getgroups() {
                Ok(groups) if groups == [Gid::from_raw(10), Gid::from_raw(20)] => {}
                other => return fail(3, format!("groups {other:?}")),
            }
            // The capabilities survived the switch, ready for apply_capabilities.
            match caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SETPCAP) {
                Ok(true) => 0,
                other => fail(4, format!("CAP_SETPCAP effective: {other:?}")),
            }
        });
        assert_eq!(code, 0);
    }

    /// The order the container init uses: user first, capabilities after.
    #[test]
    fn capabilities_apply_after_switching_user() {
        use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder};
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(1000u32)
            .build()
            .expect("user");
        let chown: oci_spec::runtime::Capabilities = [Capability::Chown].into_iter().collect();
        let spec = LinuxCapabilitiesBuilder::default()
            .bounding(chown.clone())
            .effective(chown.clone())
            .inheritable(chown.clone())
            .permitted(chown.clone())
            .ambient(chown)
            .build()
            .expect("capabilities");
        let code = in_child(|| {
            if let Err(e) = switch_user(&user) {
                return fail(1, e);
            }
            if let Err(e) = crate::security::apply_capabilities(Some(&spec)) {
                return fail(2, e);
            }
            let want: caps::CapsHashSet = [caps::Capability::CAP_CHOWN].into_iter().collect();
            for set in [
                caps::CapSet::Bounding,
                caps::CapSet::Ambient,
                caps::CapSet::Effective,
            ] {
                match caps::read(None, set) {
                    Ok(got) if got == want => {}
                    other => return fail(3, format!("{set:?} is {other:?}")),
                }
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn no_additional_gids_clears_the_groups() {
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(1000u32)
            .build()
            .expect("user");
        let code = in_child(|| {
            if let Err(e) = setgroups(&[Gid::from_raw(30)]) {
                return fail(1, e);
            }
            if let Err(e) = switch_user(&user) {
                return fail(2, e);
            }
            match getgroups() {
                Ok(groups) if groups.is_empty() => 0,
                other => fail(3, format!("groups {other:?}")),
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn umask_is_set_only_when_given() {
        let with = UserBuilder::default()
            .umask(0o027u32)
            .build()
            .expect("user");
        let without = User::default();
        let code = in_child(|| {
            set_umask(&with);
            set_umask(&without);
            let previous = umask(Mode::from_bits_truncate(0o022));
            if previous.bits() == 0o027 {
                0
            } else {
                fail(1, format!("umask {:o}", previous.bits()))
            }
        });
        assert_eq!(code, 0);
    }
}
