//! The syscall filter (`linux.seccomp`): translated into a libseccomp filter
//! in the runtime, loaded by the container init just before execve.

use std::collections::HashSet;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::SecurityError;

/// The kernel passes six syscall arguments; `args[].index` must name one.
const SYSCALL_ARGS: usize = 6;

/// errnoRet when the config leaves it out, as other runtimes do.
const DEFAULT_ERRNO: u16 = libc::EPERM as u16;

/// A translated filter, not yet loaded. It is plain memory, so it can be
/// built before the container init is cloned and loaded in the child.
#[derive(Debug)]
pub struct SeccompFilter {
    context: ScmpFilterContext,
    skipped_syscalls: Vec<String>,
}

impl SeccompFilter {
    /// Loads the filter into the calling thread. The kernel requires the
    /// no_new_privs bit or CAP_SYS_ADMIN in the effective set; the filter
    /// never sets no_new_privs on its own, `process.noNewPrivileges` decides.
    pub fn load(&self) -> Result<(), SecurityError> {
        self.context.load().map_err(|cause| {
            if cause.sysrawrc() == Some(-libc::EACCES) {
                SecurityError::config(
                    "linux.seccomp",
                    "the kernel refused the filter: set process.noNewPrivileges or load it \
                     while CAP_SYS_ADMIN is effective",
                )
            } else {
                seccomp_error("linux.seccomp", "loading the filter", cause)
            }
        })
    }

    /// Syscall names in the config that this architecture does not have;
    /// they are left out of the filter rather than failing the container.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped_syscalls
    }
}

/// Translates `linux.seccomp` into a filter without loading it.
pub fn build_seccomp(spec: &LinuxSeccomp) -> Result<SeccompFilter, SecurityError> {
    if spec.listener_path().is_some() {
        return Err(SecurityError::config(
            "linux.seccomp.listenerPath",
            "seccomp notify agents are not supported by berth",
        ));
    }
    let default_action = scmp_action(
        spec.default_action(),
        spec.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;
    let mut context = ScmpFilterContext::new(default_action).map_err(|cause| {
        seccomp_error("linux.seccomp.defaultAction", "creating the filter", cause)
    })?;
    context
        .set_ctl_nnp(false)
        .map_err(|cause| seccomp_error("linux.seccomp", "setting up the filter", cause))?;
    // Best effort: it lets load() see the kernel's errno; an older
    // libseccomp without it still works, with a vaguer load error.
    let _ = context.set_api_sysrawrc(true);

    for (i, arch) in spec.architectures().iter().flatten().enumerate() {
        context.add_arch(scmp_arch(*arch)).map_err(|cause| {
            seccomp_error(
                format!("linux.seccomp.architectures[{i}]"),
                format!("adding {arch}"),
                cause,
            )
        })?;
    }
    for (i, flag) in spec.flags().iter().flatten().enumerate() {
        set_flag(&mut context, *flag, &format!("linux.seccomp.flags[{i}]"))?;
    }

    let mut skipped_syscalls = Vec::new();
    for (i, rule) in spec.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        add_rule(
            &mut context,
            rule,
            default_action,
            &field,
            &mut skipped_syscalls,
        )?;
    }
    Ok(SeccompFilter {
        context,
        skipped_syscalls,
    })
}

fn add_rule(
    context: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default_action: ScmpAction,
    field: &str,
    skipped_syscalls: &mut Vec<String>,
) -> Result<(), SecurityError> {
    let action = scmp_action(
        rule.action(),
        rule.errno_ret(),
        &format!("{field}.action"),
        &format!("{field}.errnoRet"),
    )?;
    let conditions = rule
        .args()
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, arg)| scmp_condition(arg, &format!("{field}.args[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
    // libseccomp refuses a rule that repeats the default action; it would
    // change nothing anyway.
    if action == default_action {
        return Ok(());
    }
    for (k, name) in rule.names().iter().enumerate() {
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            skipped_syscalls.push(name.clone());
            continue;
        };
        add_syscall(context, action, syscall, &conditions).map_err(|cause| {
            seccomp_error(
                format!("{field}.names[{k}]"),
                format!("adding the rule for {name}"),
                cause,
            )
        })?;
    }
    Ok(())
}

/// Conditions on different arguments must all hold. Several conditions on
/// the same argument cannot be one libseccomp rule, so each becomes its own
/// rule and any of them matches, which is what seccomp profiles written
/// for Docker and runc expect.
fn add_syscall(
    context: &mut ScmpFilterContext,
    action: ScmpAction,
    syscall: ScmpSyscall,
    conditions: &[(usize, ScmpArgCompare)],
) -> Result<(), libseccomp::error::SeccompError> {
    let indexes: HashSet<usize> = conditions.iter().map(|(index, _)| *index).collect();
    if indexes.len() == conditions.len() {
        let all: Vec<ScmpArgCompare> = conditions.iter().map(|(_, cmp)| *cmp).collect();
        context.add_rule_conditional(action, syscall, &all)?;
    } else {
        for (_, cmp) in conditions {
            context.add_rule_conditional(action, syscall, &[*cmp])?;
        }
    }
    Ok(())
}

fn scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    action_field: &str,
    errno_field: &str,
) -> Result<ScmpAction, SecurityError> {
    let ret = || -> Result<u16, SecurityError> {
        match errno_ret {
            None => Ok(DEFAULT_ERRNO),
            Some(value) => u16::try_from(value).map_err(|_| {
                SecurityError::config(errno_field, format!("{value} does not fit in 16 bits"))
            }),
        }
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(ret()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret()?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SecurityError::config(
                action_field,
                "SCMP_ACT_NOTIFY is not supported by berth (it has no seccomp agent support)",
            ));
        }
    })
}

/// One `args[]` entry as a libseccomp comparison, with its argument index.
fn scmp_condition(
    arg: &LinuxSeccompArg,
    field: &str,
) -> Result<(usize, ScmpArgCompare), SecurityError> {
    let index = arg.index();
    if index >= SYSCALL_ARGS {
        return Err(SecurityError::config(
            format!("{field}.index"),
            format!("{index} is not a syscall argument (0 to 5)"),
        ));
    }
    let value = arg.value();
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // `value` is the mask and `valueTwo` what the masked argument must equal.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(value),
            arg.value_two().unwrap_or(0),
        ),
    };
    // Checked above: the index is below 6.
    let index_u32 = index as u32;
    Ok((index, ScmpArgCompare::new(index_u32, op, datum)))
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn set_flag(
    context: &mut ScmpFilterContext,
    flag: LinuxSeccompFilterFlag,
    field: &str,
) -> Result<(), SecurityError> {
    let result = match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => context.set_ctl_log(true),
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => context.set_ctl_tsync(true),
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => context.set_ctl_ssb(true),
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            return Err(SecurityError::config(
                field,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only applies to SCMP_ACT_NOTIFY, \
                 which berth does not support",
            ));
        }
    };
    result
        .map(drop)
        .map_err(|cause| seccomp_error(field, format!("setting {flag}"), cause))
}

/// Actions a config can use with berth, for `berth-runtime features`.
pub fn seccomp_actions() -> Vec<String> {
    [
        LinuxSeccompAction::ScmpActAllow,
        LinuxSeccompAction::ScmpActErrno,
        LinuxSeccompAction::ScmpActKill,
        LinuxSeccompAction::ScmpActKillProcess,
        LinuxSeccompAction::ScmpActKillThread,
        LinuxSeccompAction::ScmpActLog,
        LinuxSeccompAction::ScmpActTrace,
        LinuxSeccompAction::ScmpActTrap,
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

/// Comparison operators for `args[].op`, for `berth-runtime features`.
pub fn seccomp_operators() -> Vec<String> {
    [
        LinuxSeccompOperator::ScmpCmpEq,
        LinuxSeccompOperator::ScmpCmpGe,
        LinuxSeccompOperator::ScmpCmpGt,
        LinuxSeccompOperator::ScmpCmpLe,
        LinuxSeccompOperator::ScmpCmpLt,
        LinuxSeccompOperator::ScmpCmpMaskedEq,
        LinuxSeccompOperator::ScmpCmpNe,
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

/// Architectures for `architectures`, for `berth-runtime features`.
pub fn seccomp_archs() -> Vec<String> {
    [
        Arch::ScmpArchAarch64,
        Arch::ScmpArchArm,
        Arch::ScmpArchLoongarch64,
        Arch::ScmpArchM68k,
        Arch::ScmpArchMips,
        Arch::ScmpArchMips64,
        Arch::ScmpArchMips64n32,
        Arch::ScmpArchMipsel,
        Arch::ScmpArchMipsel64,
        Arch::ScmpArchMipsel64n32,
        Arch::ScmpArchParisc,
        Arch::ScmpArchParisc64,
        Arch::ScmpArchPpc,
        Arch::ScmpArchPpc64,
        Arch::ScmpArchPpc64le,
        Arch::ScmpArchRiscv64,
        Arch::ScmpArchS390,
        Arch::ScmpArchS390x,
        Arch::ScmpArchSh,
        Arch::ScmpArchSheb,
        Arch::ScmpArchX32,
        Arch::ScmpArchX86,
        Arch::ScmpArchX86_64,
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

/// Filter flags for `flags`, for `berth-runtime features`.
pub fn seccomp_flags() -> Vec<String> {
    [
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

fn seccomp_error(
    field: impl Into<String>,
    op: impl Into<String>,
    cause: libseccomp::error::SeccompError,
) -> SecurityError {
    SecurityError::Seccomp {
        field: field.into(),
        op: op.into(),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::test_support::{fail, in_child};
    use nix::errno::Errno;
    use nix::sys::stat::Mode;
    use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSyscallBuilder};
    use std::io::{Read, Seek};

    fn rule(names: &[&str], action: LinuxSeccompAction, errno_ret: Option<u32>) -> LinuxSyscall {
        let mut builder = LinuxSyscallBuilder::default()
            .names(names.iter().map(ToString::to_string).collect::<Vec<_>>())
            .action(action);
        if let Some(ret) = errno_ret {
            builder = builder.errno_ret(ret);
        }
        builder.build().expect("syscall rule")
    }

    fn arg(index: usize, op: LinuxSeccompOperator, value: u64, two: u64) -> LinuxSeccompArg {
        LinuxSeccompArgBuilder::default()
            .index(index)
            .op(op)
            .value(value)
            .value_two(two)
            .build()
            .expect("arg")
    }

    fn allow_except(syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .syscalls(syscalls)
            .build()
            .expect("seccomp")
    }

    /// The filter as libseccomp's readable pseudo code.
    fn pfc(filter: &SeccompFilter) -> String {
        let mut file = tempfile::tempfile().expect("tempfile");
        filter.context.export_pfc(&file).expect("export");
        file.rewind().expect("rewind");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("read");
        text
    }

    /// The lines of the pseudo code that filter `name` on the native arch.
    fn rules_for(pfc: &str, name: &str) -> Vec<String> {
        let header = format!("# filter for syscall \"{name}\"");
        pfc.lines()
            .skip_while(|line| !line.trim_start().starts_with(&header))
            .skip(1)
            .take_while(|line| !line.trim_start().starts_with('#'))
            .map(|line| line.trim().to_string())
            .collect()
    }

    #[test]
    fn errno_rule_and_masked_argument_translate() {
        let mut personality = rule(&["personality"], LinuxSeccompAction::ScmpActErrno, Some(38));
        personality.set_args(Some(vec![arg(
            0,
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            0xff,
            8,
        )]));
        let spec = allow_except(vec![
            rule(&["mkdir"], LinuxSeccompAction::ScmpActErrno, Some(1)),
            personality,
        ]);
        let text = pfc(&build_seccomp(&spec).unwrap());

        let mkdir = rules_for(&text, "mkdir");
        assert_eq!(
            mkdir.last().map(String::as_str),
            Some("action ERRNO(1);"),
            "{text}"
        );
        let personality = rules_for(&text, "personality").join("\n");
        assert!(personality.contains("& 0x000000ff == 8)"), "{text}");
        assert!(personality.contains("action ERRNO(38);"), "{text}");
        assert!(text.contains("# default action\n  action ALLOW;"), "{text}");
    }

    #[test]
    fn missing_errno_ret_means_eperm() {
        let spec = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .syscalls(vec![rule(
                &["getpid"],
                LinuxSeccompAction::ScmpActAllow,
                None,
            )])
            .build()
            .unwrap();
        let text = pfc(&build_seccomp(&spec).unwrap());
        assert!(text.contains("action ERRNO(1);"), "{text}");
    }

    #[test]
    fn conditions_on_different_arguments_must_all_hold() {
        let mut clone = rule(&["clone"], LinuxSeccompAction::ScmpActErrno, None);
        clone.set_args(Some(vec![
            arg(0, LinuxSeccompOperator::ScmpCmpEq, 1, 0),
            arg(1, LinuxSeccompOperator::ScmpCmpEq, 2, 0),
        ]));
        let text = pfc(&build_seccomp(&allow_except(vec![clone])).unwrap());
        let rules = rules_for(&text, "clone");
        // Nested tests: the second only runs when the first matched.
        let first = rules
            .iter()
            .position(|l| l.contains("$a0"))
            .expect("a0 test");
        let second = rules
            .iter()
            .position(|l| l.contains("$a1"))
            .expect("a1 test");
        assert!(first < second, "{text}");
        assert_eq!(
            rules.iter().filter(|l| l.starts_with("action")).count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn rule_repeating_the_default_action_is_dropped() {
        let spec = allow_except(vec![rule(
            &["mkdir"],
            LinuxSeccompAction::ScmpActAllow,
            None,
        )]);
        let text = pfc(&build_seccomp(&spec).unwrap());
        assert!(rules_for(&text, "mkdir").is_empty(), "{text}");
    }

    #[test]
    fn unknown_syscall_is_skipped() {
        let spec = allow_except(vec![rule(
            &["no_such_syscall", "mkdir"],
            LinuxSeccompAction::ScmpActErrno,
            None,
        )]);
        let filter = build_seccomp(&spec).unwrap();
        assert_eq!(filter.skipped_syscalls(), ["no_such_syscall"]);
        assert!(!rules_for(&pfc(&filter), "mkdir").is_empty());
    }

    #[test]
    fn unsupported_action_names_the_field() {
        let spec = allow_except(vec![
            rule(&["mkdir"], LinuxSeccompAction::ScmpActErrno, None),
            rule(&["mkdirat"], LinuxSeccompAction::ScmpActNotify, None),
        ]);
        let err = build_seccomp(&spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY is not supported by berth \
             (it has no seccomp agent support)"
        );
    }

    #[test]
    fn listener_path_is_refused() {
        let mut spec = allow_except(vec![]);
        spec.set_listener_path(Some("/run/agent.sock".into()));
        let err = build_seccomp(&spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.listenerPath: seccomp notify agents are not supported by berth"
        );
    }

    #[test]
    fn argument_index_beyond_six_names_the_field() {
        let mut mkdir = rule(&["mkdir"], LinuxSeccompAction::ScmpActErrno, None);
        mkdir.set_args(Some(vec![
            arg(0, LinuxSeccompOperator::ScmpCmpEq, 0, 0),
            arg(6, LinuxSeccompOperator::ScmpCmpEq, 0, 0),
        ]));
        let err = build_seccomp(&allow_except(vec![mkdir])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[0].args[1].index: 6 is not a syscall argument (0 to 5)"
        );
    }

    #[test]
    fn errno_ret_too_large_names_the_field() {
        let spec = allow_except(vec![rule(
            &["mkdir"],
            LinuxSeccompAction::ScmpActErrno,
            Some(70_000),
        )]);
        let err = build_seccomp(&spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[0].errnoRet: 70000 does not fit in 16 bits"
        );
    }

    #[test]
    fn feature_lists_use_the_config_spelling() {
        let actions = seccomp_actions();
        assert!(actions.contains(&"SCMP_ACT_ERRNO".to_string()));
        assert!(!actions.contains(&"SCMP_ACT_NOTIFY".to_string()));
        assert!(seccomp_operators().contains(&"SCMP_CMP_MASKED_EQ".to_string()));
        assert!(seccomp_archs().contains(&"SCMP_ARCH_X86_64".to_string()));
        assert!(seccomp_flags().contains(&"SECCOMP_FILTER_FLAG_LOG".to_string()));
        // Each name must read back as a config value.
        let parse = |name: &String| serde_json::Value::String(name.clone());
        for name in &actions {
            serde_json::from_value::<LinuxSeccompAction>(parse(name)).expect(name);
        }
        for name in &seccomp_operators() {
            serde_json::from_value::<LinuxSeccompOperator>(parse(name)).expect(name);
        }
        for name in &seccomp_archs() {
            serde_json::from_value::<Arch>(parse(name)).expect(name);
        }
        for name in &seccomp_flags() {
            serde_json::from_value::<LinuxSeccompFilterFlag>(parse(name)).expect(name);
        }
    }

    #[test]
    fn loaded_filter_makes_mkdir_fail_with_eperm() {
        let spec = allow_except(vec![rule(
            &["mkdir", "mkdirat"],
            LinuxSeccompAction::ScmpActErrno,
            Some(libc::EPERM as u32),
        )]);
        // Built here, loaded in the child, as the runtime does around clone.
        let filter = build_seccomp(&spec).unwrap();
        let dir = tempfile::tempdir().expect("tempdir");
        let code = in_child(|| {
            if let Err(e) = crate::security::set_no_new_privileges() {
                return fail(1, e);
            }
            if let Err(e) = filter.load() {
                return fail(2, e);
            }
            match nix::unistd::mkdir(&dir.path().join("d"), Mode::from_bits_truncate(0o755)) {
                Err(Errno::EPERM) => {}
                other => return fail(3, format!("mkdir gave {other:?}")),
            }
            let at = nix::sys::stat::mkdirat(
                nix::fcntl::AT_FDCWD,
                &dir.path().join("e"),
                Mode::from_bits_truncate(0o755),
            );
            if at != Err(Errno::EPERM) {
                return fail(4, format!("mkdirat gave {at:?}"));
            }
            match std::fs::write(dir.path().join("f"), b"ok") {
                Ok(()) => 0,
                Err(e) => fail(5, format!("writing a file: {e}")),
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn loading_without_no_new_privs_or_cap_sys_admin_says_why() {
        let filter = build_seccomp(&allow_except(vec![rule(
            &["mkdir"],
            LinuxSeccompAction::ScmpActErrno,
            None,
        )]))
        .unwrap();
        let code = in_child(|| {
            if let Err(e) = crate::security::apply_capabilities(None) {
                return fail(1, e);
            }
            match filter.load() {
                Err(e) if e.to_string().contains("set process.noNewPrivileges") => 0,
                other => fail(2, format!("load gave {other:?}")),
            }
        });
        assert_eq!(code, 0);
    }
}
