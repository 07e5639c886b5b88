//! Capability sets (`process.capabilities`) and the no_new_privs bit
//! (`process.noNewPrivileges`): what privileges the container process keeps
//! and whether execve may grant it more.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use super::SecurityError;

const BOUNDING: &str = "process.capabilities.bounding";
const EFFECTIVE: &str = "process.capabilities.effective";
const INHERITABLE: &str = "process.capabilities.inheritable";
const PERMITTED: &str = "process.capabilities.permitted";
const AMBIENT: &str = "process.capabilities.ambient";

/// Every capability a config can name and this build can apply, as
/// `CAP_...`, in kernel order.
pub fn capability_names() -> Vec<String> {
    sorted(&caps::all())
        .iter()
        .filter(|cap| capability_from_name(&cap.to_string(), "").is_ok())
        .map(ToString::to_string)
        .collect()
}

/// Parses a capability name as a user writes it (`CAP_NET_ADMIN`, or
/// `NET_ADMIN` as some tools do); `field` names where it came from.
pub fn capability_from_name(name: &str, field: &str) -> Result<Capability, SecurityError> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare)
        .map_err(|_| SecurityError::config(field, format!("unknown capability {name}")))
}

/// Applies `process.capabilities`: the bounding set first (dropping needs
/// CAP_SETPCAP, which the later steps may remove), then the inheritable,
/// effective and permitted sets, then the ambient set. `None` drops every
/// capability. Capabilities the running kernel does not know are skipped.
pub fn apply_capabilities(spec: Option<&LinuxCapabilities>) -> Result<(), SecurityError> {
    let supported = caps::runtime::thread_all_supported();
    let wanted = WantedCaps::from_spec(spec, &supported)?;
    let current = CurrentCaps::read()?;
    wanted.check_against(&current)?;

    let to_drop: CapsHashSet = supported.difference(&wanted.bounding).copied().collect();
    for cap in sorted(&to_drop) {
        caps::drop(None, CapSet::Bounding, cap)
            .map_err(|cause| caps_error(BOUNDING, format!("dropping {cap}"), cause))?;
    }
    caps::set(None, CapSet::Inheritable, &wanted.inheritable)
        .map_err(|cause| caps_error(INHERITABLE, "setting the set", cause))?;
    caps::set(None, CapSet::Effective, &wanted.effective)
        .map_err(|cause| caps_error(EFFECTIVE, "setting the set", cause))?;
    caps::set(None, CapSet::Permitted, &wanted.permitted)
        .map_err(|cause| caps_error(PERMITTED, "setting the set", cause))?;

    if wanted.ambient.is_empty() {
        // A kernel without ambient capabilities has nothing to clear.
        if caps::runtime::ambient_set_supported().is_ok() {
            caps::clear(None, CapSet::Ambient)
                .map_err(|cause| caps_error(AMBIENT, "clearing the set", cause))?;
        }
        return Ok(());
    }
    caps::runtime::ambient_set_supported().map_err(|_| {
        SecurityError::config(AMBIENT, "the running kernel has no ambient capabilities")
    })?;
    caps::clear(None, CapSet::Ambient)
        .map_err(|cause| caps_error(AMBIENT, "clearing the set", cause))?;
    for cap in sorted(&wanted.ambient) {
        caps::raise(None, CapSet::Ambient, cap)
            .map_err(|cause| caps_error(AMBIENT, format!("raising {cap}"), cause))?;
    }
    Ok(())
}

/// Sets the no_new_privs bit: from here on execve cannot grant privileges
/// (setuid bits, file capabilities), and seccomp filters load without
/// CAP_SYS_ADMIN.
pub fn set_no_new_privileges() -> Result<(), SecurityError> {
    nix::sys::prctl::set_no_new_privs().map_err(|errno| {
        SecurityError::sys(
            "process.noNewPrivileges",
            "prctl(PR_SET_NO_NEW_PRIVS)",
            errno,
        )
    })
}

/// The five sets the config asks for, in the kernel's terms, limited to the
/// capabilities the running kernel supports.
#[derive(Debug, Default, PartialEq)]
struct WantedCaps {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    inheritable: CapsHashSet,
    permitted: CapsHashSet,
    ambient: CapsHashSet,
}

impl WantedCaps {
    fn from_spec(
        spec: Option<&LinuxCapabilities>,
        supported: &CapsHashSet,
    ) -> Result<Self, SecurityError> {
        let Some(spec) = spec else {
            return Ok(Self::default());
        };
        let set =
            |field: &str, caps: &Option<Capabilities>| -> Result<CapsHashSet, SecurityError> {
                let mut out = HashSet::new();
                for cap in caps.iter().flatten() {
                    let kernel_cap = kernel_capability(*cap, field)?;
                    if supported.contains(&kernel_cap) {
                        out.insert(kernel_cap);
                    }
                }
                Ok(out)
            };
        let wanted = Self {
            bounding: set(BOUNDING, spec.bounding())?,
            effective: set(EFFECTIVE, spec.effective())?,
            inheritable: set(INHERITABLE, spec.inheritable())?,
            permitted: set(PERMITTED, spec.permitted())?,
            ambient: set(AMBIENT, spec.ambient())?,
        };
        wanted.check_consistent()?;
        let mut wanted = wanted;
        wanted.drop_unraisable_ambient();
        Ok(wanted)
    }

    /// The kernel's own rules between the sets, checked up front so the
    /// error names the capability instead of a bare EPERM from capset.
    fn check_consistent(&self) -> Result<(), SecurityError> {
        if let Some(cap) = first_missing(&self.effective, &self.permitted) {
            return Err(SecurityError::config(
                EFFECTIVE,
                format!("{cap} is not in process.capabilities.permitted"),
            ));
        }
        Ok(())
    }

    /// The kernel raises an ambient capability only when it is permitted and inheritable.
    /// Configs written for runc (its own `runc spec` among them) list ambient capabilities
    /// without inheritable ones, and runc skips those with a warning: so does berth.
    fn drop_unraisable_ambient(&mut self) {
        for cap in sorted(&self.ambient) {
            if !self.permitted.contains(&cap) || !self.inheritable.contains(&cap) {
                self.ambient.remove(&cap);
            }
        }
    }

    /// What the runtime process itself can grant: the permitted and
    /// effective sets can only shrink, and a new inheritable capability must
    /// be in the bounding set (or already inheritable).
    fn check_against(&self, current: &CurrentCaps) -> Result<(), SecurityError> {
        for (field, set) in [(PERMITTED, &self.permitted), (EFFECTIVE, &self.effective)] {
            if let Some(cap) = first_missing(set, &current.permitted) {
                return Err(SecurityError::config(
                    field,
                    format!("cannot keep {cap}: the runtime itself does not have it"),
                ));
            }
        }
        let grantable: CapsHashSet = self.bounding.union(&current.inheritable).copied().collect();
        if let Some(cap) = first_missing(&self.inheritable, &grantable) {
            return Err(SecurityError::config(
                INHERITABLE,
                format!("{cap} is not in process.capabilities.bounding"),
            ));
        }
        Ok(())
    }
}

/// The sets of the calling thread that limit what it can grant.
struct CurrentCaps {
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
}

impl CurrentCaps {
    fn read() -> Result<Self, SecurityError> {
        Ok(Self {
            permitted: caps::read(None, CapSet::Permitted)
                .map_err(|cause| caps_error(PERMITTED, "reading the runtime's set", cause))?,
            inheritable: caps::read(None, CapSet::Inheritable)
                .map_err(|cause| caps_error(INHERITABLE, "reading the runtime's set", cause))?,
        })
    }
}

/// Maps a config capability to the kernel's by name, so a capability the
/// spec crate knows but the capability crate does not is reported, not lost.
fn kernel_capability(cap: Capability, field: &str) -> Result<caps::Capability, SecurityError> {
    let name = format!("CAP_{cap}");
    caps::Capability::from_str(&name).map_err(|_| {
        SecurityError::config(field, format!("{name} is not known to this build of berth"))
    })
}

fn first_missing(set: &CapsHashSet, within: &CapsHashSet) -> Option<caps::Capability> {
    sorted(set).into_iter().find(|cap| !within.contains(cap))
}

fn sorted(set: &CapsHashSet) -> Vec<caps::Capability> {
    let mut caps: Vec<caps::Capability> = set.iter().copied().collect();
    caps.sort_by_key(|cap| cap.index());
    caps
}

fn caps_error(field: &str, op: impl Into<String>, cause: caps::errors::CapsError) -> SecurityError {
    SecurityError::Capabilities {
        field: field.to_string(),
        op: op.into(),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::test_support::{fail, in_child};
    use nix::errno::Errno;
    use nix::unistd::{Gid, Uid, chown};
    use oci_spec::runtime::LinuxCapabilitiesBuilder;

    fn set_of(caps: &[Capability]) -> Capabilities {
        caps.iter().copied().collect()
    }

    fn all_sets(caps: &[Capability]) -> LinuxCapabilities {
        LinuxCapabilitiesBuilder::default()
            .bounding(set_of(caps))
            .effective(set_of(caps))
            .inheritable(set_of(caps))
            .permitted(set_of(caps))
            .ambient(set_of(caps))
            .build()
            .expect("capabilities")
    }

    #[test]
    fn names_parse_with_or_without_prefix() {
        assert_eq!(
            capability_from_name("CAP_NET_ADMIN", "f").unwrap(),
            Capability::NetAdmin
        );
        assert_eq!(
            capability_from_name("sys_admin", "f").unwrap(),
            Capability::SysAdmin
        );
    }

    #[test]
    fn unknown_name_is_an_error_naming_the_field() {
        let err = capability_from_name("CAP_FLY", "process.capabilities.bounding").unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.capabilities.bounding: unknown capability CAP_FLY"
        );
    }

    #[test]
    fn every_known_name_maps_to_the_same_kernel_capability() {
        let names = capability_names();
        assert!(names.contains(&"CAP_CHOWN".to_string()));
        assert!(names.contains(&"CAP_CHECKPOINT_RESTORE".to_string()));
        for name in names {
            let cap = capability_from_name(&name, "f").unwrap();
            let kernel = kernel_capability(cap, "f").unwrap();
            assert_eq!(kernel.to_string(), name);
        }
    }

    #[test]
    fn none_means_every_set_empty() {
        let wanted = WantedCaps::from_spec(None, &caps::all()).unwrap();
        assert_eq!(wanted, WantedCaps::default());
    }

    #[test]
    fn capabilities_the_kernel_lacks_are_skipped() {
        let supported: CapsHashSet = [caps::Capability::CAP_CHOWN].into_iter().collect();
        let spec = all_sets(&[Capability::Chown, Capability::CheckpointRestore]);
        let wanted = WantedCaps::from_spec(Some(&spec), &supported).unwrap();
        assert_eq!(wanted.bounding, supported);
        assert_eq!(wanted.ambient, supported);
    }

    #[test]
    fn ambient_without_inheritable_is_skipped_as_runc_does() {
        let mut spec = all_sets(&[Capability::Chown, Capability::Kill]);
        spec.set_inheritable(Some(set_of(&[Capability::Chown])));
        let wanted = WantedCaps::from_spec(Some(&spec), &caps::all()).unwrap();
        let only_chown: CapsHashSet = [caps::Capability::CAP_CHOWN].into_iter().collect();
        assert_eq!(wanted.ambient, only_chown);
    }

    #[test]
    fn effective_outside_permitted_is_an_error() {
        let mut spec = all_sets(&[Capability::Chown]);
        spec.set_effective(Some(set_of(&[Capability::Chown, Capability::Kill])));
        spec.set_ambient(None);
        let err = WantedCaps::from_spec(Some(&spec), &caps::all()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.capabilities.effective: CAP_KILL is not in process.capabilities.permitted"
        );
    }

    /// chown(2) to another owner as root succeeds only with CAP_CHOWN.
    fn chown_after_applying(caps: &[Capability]) -> i32 {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"").expect("write");
        let expect_ok = caps.contains(&Capability::Chown);
        let spec = all_sets(caps);
        in_child(|| {
            if let Err(e) = apply_capabilities(Some(&spec)) {
                return fail(1, e);
            }
            match (expect_ok, chown(&file, Some(Uid::from_raw(1)), None::<Gid>)) {
                (true, Ok(())) | (false, Err(Errno::EPERM)) => 0,
                (_, other) => fail(2, format!("chown gave {other:?}")),
            }
        })
    }

    #[test]
    fn without_cap_chown_chown_is_refused() {
        assert_eq!(
            chown_after_applying(&[Capability::Kill, Capability::Fowner]),
            0
        );
    }

    #[test]
    fn with_cap_chown_chown_works() {
        assert_eq!(chown_after_applying(&[Capability::Chown]), 0);
    }

    #[test]
    fn applied_sets_show_in_the_kernel() {
        let spec = all_sets(&[Capability::Chown, Capability::NetBindService]);
        let code = in_child(|| {
            if let Err(e) = apply_capabilities(Some(&spec)) {
                return fail(1, e);
            }
            let want: CapsHashSet = [
                caps::Capability::CAP_CHOWN,
                caps::Capability::CAP_NET_BIND_SERVICE,
            ]
            .into_iter()
            .collect();
            for set in [
                CapSet::Bounding,
                CapSet::Effective,
                CapSet::Inheritable,
                CapSet::Permitted,
                CapSet::Ambient,
            ] {
                match caps::read(None, set) {
                    Ok(got) if got == want => {}
                    other => return fail(2, format!("{set:?} is {other:?}")),
                }
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn none_drops_everything() {
        let code = in_child(|| {
            if let Err(e) = apply_capabilities(None) {
                return fail(1, e);
            }
            for set in [CapSet::Bounding, CapSet::Effective, CapSet::Permitted] {
                match caps::read(None, set) {
                    Ok(got) if got.is_empty() => {}
                    other => return fail(2, format!("{set:?} is {other:?}")),
                }
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn no_new_privileges_sets_the_bit() {
        let code = in_child(|| {
            if let Err(e) = set_no_new_privileges() {
                return fail(1, e);
            }
            match nix::sys::prctl::get_no_new_privs() {
                Ok(true) => 0,
                other => fail(2, format!("{other:?}")),
            }
        });
        assert_eq!(code, 0);
    }
}
