//! linux.resources.devices: the rule list as v1 `devices.allow`/`devices.deny` lines, and as
//! the eBPF program that cgroup v2 runs on every open and mknod of a device node.
//!
//! The rules read as v1 reads them after a leading `deny a`: in order, each later rule
//! overriding the earlier ones for the accesses it names, and whatever no rule allows is
//! denied.

use std::fmt;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::bpf::Insn;

/// Access bits as the kernel passes them in the high half of `access_type`.
const ACCESS_MKNOD: u8 = 1;
const ACCESS_READ: u8 = 2;
const ACCESS_WRITE: u8 = 4;
const ACCESS_ALL: u8 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;

/// One rule of linux.resources.devices, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub(crate) allow: bool,
    /// `None` matches block and character devices alike (type `a`).
    pub(crate) kind: Option<DeviceKind>,
    /// `None` matches any number (`*`).
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
    /// A non-empty set of `ACCESS_*` bits.
    pub(crate) access: u8,
}

/// The device types, numbered as the kernel numbers them in the low half of `access_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum DeviceKind {
    Block = 1,
    Char = 2,
}

impl DeviceRule {
    /// Reads one spec rule: type a, b, c or u (an unbuffered character device, which the
    /// kernel does not tell apart from c); a negative or absent number is a wildcard; access
    /// is made of r, w and m, all three when absent.
    pub(crate) fn from_spec(rule: &LinuxDeviceCgroup) -> Result<DeviceRule, String> {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DeviceKind::Block),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DeviceKind::Char),
            LinuxDeviceType::P => {
                return Err("type p (a fifo) is not a device the cgroup controls".into());
            }
        };
        let number = |what: &str, n: Option<i64>| match n {
            Some(n) if n >= 0 => u32::try_from(n)
                .map(Some)
                .map_err(|_| format!("{what} {n} is not a device number")),
            _ => Ok(None),
        };
        let text = rule.access().as_deref().unwrap_or("rwm");
        let mut access = 0;
        for c in text.chars() {
            access |= match c {
                'r' => ACCESS_READ,
                'w' => ACCESS_WRITE,
                'm' => ACCESS_MKNOD,
                _ => return Err(format!("access {text:?} is not made of r, w and m")),
            };
        }
        if access == 0 {
            return Err(format!("access {text:?} is not made of r, w and m"));
        }
        Ok(DeviceRule {
            allow: rule.allow(),
            kind,
            major: number("major", rule.major())?,
            minor: number("minor", rule.minor())?,
            access,
        })
    }

    /// Whether the rule decides every access to every device, which makes the rules before
    /// it irrelevant.
    fn covers_everything(&self) -> bool {
        self.kind.is_none()
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACCESS_ALL
    }
}

/// The v1 line, `c 1:3 rwm`, that goes to `devices.allow` or `devices.deny`.
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            None => 'a',
            Some(DeviceKind::Block) => 'b',
            Some(DeviceKind::Char) => 'c',
        };
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        write!(
            f,
            "{kind} {}:{} {access}",
            number(self.major),
            number(self.minor)
        )
    }
}

// The registers of the program: the context on entry, then the request's fields.
const CTX: u8 = 1;
/// The requested accesses not decided yet by the rules seen so far.
const UNDECIDED: u8 = 2;
const KIND: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;
const RESULT: u8 = 0;

/// The longest rule list one program holds: its jumps reach at most 32767 instructions
/// ahead, and a rule takes up to five.
pub(crate) const MAX_RULES: usize = 6000;

/// The BPF_PROG_TYPE_CGROUP_DEVICE program that enforces `rules`; it returns 1 to allow
/// the access, 0 to deny it.
///
/// The rules are checked from the last to the first, so the first one that matches an
/// access is the one that decides it. The request's access bits start out undecided; a
/// matching deny rule that names any of them denies the request, a matching allow rule
/// settles the bits it names, and the request is allowed once none are left. Bits still
/// undecided after the first rule are denied. Rules before the last one that covers
/// everything can never decide anything and are left out, which also spares the verifier
/// code it would find unreachable.
pub(crate) fn program(rules: &[DeviceRule]) -> Result<Vec<Insn>, String> {
    if rules.len() > MAX_RULES {
        return Err(format!(
            "{} rules are more than the eBPF filter holds ({MAX_RULES})",
            rules.len()
        ));
    }
    let first = rules
        .iter()
        .rposition(DeviceRule::covers_everything)
        .unwrap_or(0);
    let mut code = vec![
        // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
        Insn::load_u32(UNDECIDED, CTX, 0),
        Insn::load_u32(KIND, CTX, 0),
        Insn::and(KIND, 0xffff),
        Insn::shift_right(UNDECIDED, 16),
        Insn::load_u32(MAJOR, CTX, 4),
        Insn::load_u32(MINOR, CTX, 8),
    ];
    // Jumps to the final deny or allow, patched once their place is known.
    let mut to_deny = Vec::new();
    let mut to_allow = Vec::new();
    for rule in rules[first..].iter().rev() {
        let mut to_next = Vec::new();
        let conditions = [
            (KIND, rule.kind.map(|k| k as u32)),
            (MAJOR, rule.major),
            (MINOR, rule.minor),
        ];
        for (register, wanted) in conditions {
            if let Some(wanted) = wanted {
                to_next.push(code.len());
                code.push(Insn::jump_if_not_equal_u32(register, wanted));
            }
        }
        if rule.allow {
            code.push(Insn::and(UNDECIDED, !i32::from(rule.access)));
            to_allow.push(code.len());
            code.push(Insn::jump_if_zero(UNDECIDED));
        } else {
            to_deny.push(code.len());
            code.push(Insn::jump_if_any_bit(UNDECIDED, rule.access));
        }
        point_at_end(&mut code, &to_next)?;
    }
    point_at_end(&mut code, &to_deny)?;
    code.extend([Insn::move_imm(RESULT, 0), Insn::exit()]);
    if !to_allow.is_empty() {
        point_at_end(&mut code, &to_allow)?;
        code.extend([Insn::move_imm(RESULT, 1), Insn::exit()]);
    }
    Ok(code)
}

/// Points the jumps at `sources` to the instruction that comes next.
fn point_at_end(code: &mut [Insn], sources: &[usize]) -> Result<(), String> {
    let target = code.len();
    for &source in sources {
        let offset = i16::try_from(target - source - 1)
            .map_err(|_| "the eBPF filter is too long for its jumps".to_string())?;
        code[source].off = offset;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::bpf::opcode;

    fn rule(
        allow: bool,
        kind: Option<DeviceKind>,
        major: Option<u32>,
        minor: Option<u32>,
        access: &str,
    ) -> DeviceRule {
        let mut bits = 0;
        for c in access.chars() {
            bits |= match c {
                'r' => ACCESS_READ,
                'w' => ACCESS_WRITE,
                _ => ACCESS_MKNOD,
            };
        }
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: bits,
        }
    }

    fn deny_all() -> DeviceRule {
        rule(false, None, None, None, "rwm")
    }

    fn allow_char(major: u32, minor: Option<u32>, access: &str) -> DeviceRule {
        rule(true, Some(DeviceKind::Char), Some(major), minor, access)
    }

    /// The list the runtime applies for `runc spec`'s config: deny everything, then the
    /// devices every container gets.
    fn runtime_defaults() -> Vec<DeviceRule> {
        let mut rules = vec![deny_all()];
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            rules.push(allow_char(major, Some(minor), "rwm"));
        }
        rules.push(allow_char(136, None, "rwm"));
        rules
    }

    /// What the rules decide, read the plain way: for each requested access, the last rule
    /// that matches it.
    fn expected(
        rules: &[DeviceRule],
        kind: DeviceKind,
        major: u32,
        minor: u32,
        access: u8,
    ) -> bool {
        [ACCESS_MKNOD, ACCESS_READ, ACCESS_WRITE]
            .into_iter()
            .filter(|bit| access & bit != 0)
            .all(|bit| {
                rules
                    .iter()
                    .rev()
                    .find(|r| {
                        r.kind.is_none_or(|k| k == kind)
                            && r.major.is_none_or(|m| m == major)
                            && r.minor.is_none_or(|m| m == minor)
                            && r.access & bit != 0
                    })
                    .is_some_and(|r| r.allow)
            })
    }

    /// Checks what the verifier's first pass checks: every jump lands inside the program
    /// and every instruction is on some path from the first one.
    fn assert_well_formed(code: &[Insn]) {
        let mut reached = vec![false; code.len()];
        let mut pending = vec![0usize];
        while let Some(pc) = pending.pop() {
            if std::mem::replace(&mut reached[pc], true) {
                continue;
            }
            let insn = code[pc];
            let mut next = Vec::new();
            match insn.code {
                opcode::EXIT => {}
                opcode::JNE32_IMM | opcode::JEQ_IMM | opcode::JSET_IMM => {
                    next.push(pc as i64 + 1);
                    next.push(pc as i64 + 1 + i64::from(insn.off));
                }
                _ => next.push(pc as i64 + 1),
            }
            for target in next {
                let target = usize::try_from(target).expect("jump before the start");
                assert!(target < code.len(), "instruction {pc} leads past the end");
                pending.push(target);
            }
        }
        let unreachable: Vec<usize> = (0..code.len()).filter(|pc| !reached[*pc]).collect();
        assert!(
            unreachable.is_empty(),
            "unreachable instructions {unreachable:?}"
        );
    }

    /// Runs `code` as the kernel would for one request, for the instructions `program`
    /// emits.
    fn run(code: &[Insn], kind: DeviceKind, major: u32, minor: u32, access: u8) -> u64 {
        let ctx = [u32::from(access) << 16 | kind as u32, major, minor];
        let mut regs = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let insn = code[pc];
            let (dst, src) = (usize::from(insn.regs & 0xf), usize::from(insn.regs >> 4));
            let imm = i64::from(insn.imm) as u64;
            let jump = |taken: bool| {
                if taken {
                    pc as i64 + 1 + i64::from(insn.off)
                } else {
                    pc as i64 + 1
                }
            };
            let next = match insn.code {
                opcode::LOAD_U32 => {
                    assert_eq!(src, usize::from(CTX));
                    regs[dst] = u64::from(ctx[usize::try_from(insn.off).unwrap() / 4]);
                    jump(false)
                }
                opcode::AND_IMM => {
                    regs[dst] &= imm;
                    jump(false)
                }
                opcode::RSH_IMM => {
                    regs[dst] >>= imm;
                    jump(false)
                }
                opcode::MOV_IMM => {
                    regs[dst] = imm;
                    jump(false)
                }
                opcode::JNE32_IMM => jump(regs[dst] as u32 != insn.imm as u32),
                opcode::JEQ_IMM => jump(regs[dst] == imm),
                opcode::JSET_IMM => jump(regs[dst] & imm != 0),
                opcode::EXIT => return regs[usize::from(RESULT)],
                other => panic!("instruction {pc}: unexpected opcode {other:#x}"),
            };
            pc = usize::try_from(next).expect("jump before the start");
            assert!(pc < code.len(), "jump past the end");
        }
    }

    fn every_request() -> Vec<(DeviceKind, u32, u32, u8)> {
        let mut requests = Vec::new();
        for kind in [DeviceKind::Char, DeviceKind::Block] {
            for (major, minor) in [
                (1, 3),
                (1, 5),
                (1, 7),
                (5, 2),
                (136, 0),
                (136, 7),
                (8, 0),
                (10, 200),
                (4000, 1 << 19),
            ] {
                for access in 1..=ACCESS_ALL {
                    requests.push((kind, major, minor, access));
                }
            }
        }
        requests
    }

    fn assert_program_follows_rules(rules: &[DeviceRule]) {
        let code = program(rules).unwrap();
        assert_well_formed(&code);
        for (kind, major, minor, access) in every_request() {
            let want = expected(rules, kind, major, minor, access);
            let got = run(&code, kind, major, minor, access);
            assert_eq!(
                got,
                u64::from(want),
                "{kind:?} {major}:{minor} access {access:#b} under {:?}",
                rules.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_runtime_defaults_allow_the_standard_devices_only() {
        let rules = runtime_defaults();
        let code = program(&rules).unwrap();
        // 6 to read the request, 5 per fully numbered rule, 4 for 136:*, 1 for the deny,
        // 2 + 2 for the two exits.
        assert_eq!(code.len(), 6 + 8 * 5 + 4 + 1 + 4);
        assert_eq!(
            run(&code, DeviceKind::Char, 1, 3, ACCESS_READ | ACCESS_WRITE),
            1
        );
        assert_eq!(run(&code, DeviceKind::Char, 136, 4, ACCESS_WRITE), 1);
        assert_eq!(run(&code, DeviceKind::Block, 1, 3, ACCESS_READ), 0);
        assert_eq!(run(&code, DeviceKind::Block, 8, 0, ACCESS_READ), 0);
        assert_eq!(run(&code, DeviceKind::Char, 10, 200, ACCESS_MKNOD), 0);
        assert_program_follows_rules(&rules);
    }

    #[test]
    fn later_rules_override_earlier_ones_per_access() {
        let lists = [
            // Read-only /dev/zero, then write taken back from /dev/null.
            vec![
                deny_all(),
                allow_char(1, Some(5), "r"),
                allow_char(1, Some(3), "rwm"),
                rule(false, Some(DeviceKind::Char), Some(1), Some(3), "w"),
            ],
            // Allow everything but one block device.
            vec![
                rule(true, None, None, None, "rwm"),
                rule(false, Some(DeviceKind::Block), Some(8), Some(0), "rw"),
            ],
            // A deny in the middle that a later allow reopens in part.
            vec![
                rule(true, None, None, None, "rwm"),
                rule(false, Some(DeviceKind::Char), Some(1), None, "rwm"),
                allow_char(1, Some(7), "w"),
            ],
            // A wildcard major with a fixed minor, and type a with a fixed major.
            vec![
                rule(true, Some(DeviceKind::Char), None, Some(3), "rm"),
                rule(true, None, Some(136), None, "w"),
            ],
            // No rules at all: nothing is allowed.
            vec![],
            // Only allows, no leading deny: the rest stays denied.
            vec![allow_char(1, Some(3), "rw"), allow_char(1, Some(3), "m")],
        ];
        for rules in lists {
            assert_program_follows_rules(&rules);
        }
    }

    #[test]
    fn rules_before_one_that_covers_everything_are_left_out() {
        let mut rules = runtime_defaults();
        let full = program(&rules).unwrap().len();
        rules.insert(0, allow_char(4, Some(1), "rwm"));
        rules.insert(0, rule(true, None, None, None, "rw"));
        assert_eq!(program(&rules).unwrap().len(), full);
        assert_program_follows_rules(&rules);

        // Allowing everything last ends the program at its first rule.
        rules.push(rule(true, None, None, None, "rwm"));
        let code = program(&rules).unwrap();
        assert_eq!(code.len(), 6 + 2 + 2 + 2, "{code:?}");
        assert_eq!(run(&code, DeviceKind::Block, 8, 0, ACCESS_ALL), 1);
    }

    #[test]
    fn a_list_without_allow_rules_has_no_allow_exit() {
        let code = program(&[deny_all()]).unwrap();
        // The verifier refuses instructions no path reaches.
        assert_eq!(code.len(), 6 + 1 + 2);
        assert_well_formed(&code);
        assert_eq!(code.last().map(|i| i.code), Some(opcode::EXIT));
        assert_eq!(run(&code, DeviceKind::Char, 1, 3, ACCESS_READ), 0);
    }

    #[test]
    fn numbers_beyond_31_bits_compare_whole() {
        let big = u32::MAX - 1;
        let rules = [rule(
            true,
            Some(DeviceKind::Char),
            Some(big),
            Some(big),
            "r",
        )];
        let code = program(&rules).unwrap();
        assert_eq!(run(&code, DeviceKind::Char, big, big, ACCESS_READ), 1);
        assert_eq!(run(&code, DeviceKind::Char, big, big - 1, ACCESS_READ), 0);
    }

    #[test]
    fn too_many_rules_are_refused() {
        let rules = vec![allow_char(1, Some(3), "rwm"); MAX_RULES];
        assert!(program(&rules).is_ok());
        let rules = vec![allow_char(1, Some(3), "rwm"); MAX_RULES + 1];
        assert_eq!(
            program(&rules).unwrap_err(),
            "6001 rules are more than the eBPF filter holds (6000)"
        );
    }

    #[test]
    fn spec_rules_are_read_and_written_as_v1_lines() {
        let parse = |json: &str| {
            let spec: LinuxDeviceCgroup = serde_json::from_str(json).unwrap();
            DeviceRule::from_spec(&spec)
        };
        let line = |json: &str| parse(json).unwrap().to_string();
        assert_eq!(line(r#"{"allow": false}"#), "a *:* rwm");
        assert_eq!(
            line(r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "mwr"}"#),
            "c 1:3 rwm"
        );
        assert_eq!(
            line(r#"{"allow": true, "type": "u", "major": 136, "access": "w"}"#),
            "c 136:* w"
        );
        assert_eq!(
            line(r#"{"allow": true, "type": "b", "major": -1, "minor": 0, "access": "r"}"#),
            "b *:0 r"
        );
        assert_eq!(
            parse(r#"{"allow": true, "type": "p"}"#).unwrap_err(),
            "type p (a fifo) is not a device the cgroup controls"
        );
        assert_eq!(
            parse(r#"{"allow": true, "access": "rx"}"#).unwrap_err(),
            r#"access "rx" is not made of r, w and m"#
        );
        assert_eq!(
            parse(r#"{"allow": true, "access": ""}"#).unwrap_err(),
            r#"access "" is not made of r, w and m"#
        );
        assert_eq!(
            parse(r#"{"allow": true, "major": 4294967296}"#).unwrap_err(),
            "major 4294967296 is not a device number"
        );
    }
}
