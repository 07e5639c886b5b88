//! The eBPF instructions of a device filter and the bpf(2) calls that load it and attach it
//! to a cgroup v2 directory, in place of the filter berth attached there before.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::CgroupError;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    /// Destination register in the low four bits, source in the high four.
    pub(crate) regs: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

/// The opcodes the device filter uses: class, operation and operand source in one byte.
pub(crate) mod opcode {
    /// BPF_LDX | BPF_MEM | BPF_W
    pub(crate) const LOAD_U32: u8 = 0x61;
    /// BPF_ALU64 | BPF_AND | BPF_K
    pub(crate) const AND_IMM: u8 = 0x57;
    /// BPF_ALU64 | BPF_RSH | BPF_K
    pub(crate) const RSH_IMM: u8 = 0x77;
    /// BPF_ALU64 | BPF_MOV | BPF_K
    pub(crate) const MOV_IMM: u8 = 0xb7;
    /// BPF_JMP32 | BPF_JNE | BPF_K: compares the low 32 bits, so any u32 fits the immediate.
    pub(crate) const JNE32_IMM: u8 = 0x56;
    /// BPF_JMP | BPF_JEQ | BPF_K
    pub(crate) const JEQ_IMM: u8 = 0x15;
    /// BPF_JMP | BPF_JSET | BPF_K: jumps when `dst & imm` is not zero.
    pub(crate) const JSET_IMM: u8 = 0x45;
    /// BPF_JMP | BPF_EXIT
    pub(crate) const EXIT: u8 = 0x95;
}

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0xf),
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + off)`
    pub(crate) fn load_u32(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(opcode::LOAD_U32, dst, src, off, 0)
    }

    /// `dst &= imm`, the immediate sign-extended to 64 bits.
    pub(crate) fn and(dst: u8, imm: i32) -> Insn {
        Insn::new(opcode::AND_IMM, dst, 0, 0, imm)
    }

    pub(crate) fn shift_right(dst: u8, bits: i32) -> Insn {
        Insn::new(opcode::RSH_IMM, dst, 0, 0, bits)
    }

    pub(crate) fn move_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(opcode::MOV_IMM, dst, 0, 0, imm)
    }

    /// A forward jump when the low 32 bits of `dst` differ from `value`; the offset is
    /// patched in later.
    pub(crate) fn jump_if_not_equal_u32(dst: u8, value: u32) -> Insn {
        Insn::new(opcode::JNE32_IMM, dst, 0, 0, value as i32)
    }

    pub(crate) fn jump_if_zero(dst: u8) -> Insn {
        Insn::new(opcode::JEQ_IMM, dst, 0, 0, 0)
    }

    pub(crate) fn jump_if_any_bit(dst: u8, bits: u8) -> Insn {
        Insn::new(opcode::JSET_IMM, dst, 0, 0, i32::from(bits))
    }

    pub(crate) fn exit() -> Insn {
        Insn::new(opcode::EXIT, 0, 0, 0, 0)
    }
}

// bpf(2) commands and constants from <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Lets the cgroups below keep their own filters, which the kernel runs as well.
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// Swaps the program named by `replace_bpf_fd` for the new one in a single step.
const BPF_F_REPLACE: u32 = 1 << 2;

/// The program name berth gives its filters, which tells them from other programs on the
/// same cgroup.
const PROGRAM_NAME: &[u8] = b"berth_devices";
/// The most programs one cgroup is expected to carry for the device hook.
const MAX_ATTACHED: usize = 64;
/// The verifier's log, asked for only when a load fails.
const LOG_SIZE: usize = 64 * 1024;

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    /// Spelled out: the kernel refuses non-zero bytes past the fields it knows.
    _pad: u32,
}

#[repr(C)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
struct InfoByFdAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The head of `struct bpf_prog_info`, up to the name; the kernel fills what fits.
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// Calls bpf(2) with `attr`, returning the non-negative result.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, fully initialised #[repr(C)] value laid out as the prefix of
    // `union bpf_attr` for `cmd`, and its exact size is passed; any pointers it holds point
    // at buffers the caller keeps alive across this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a file descriptor bpf(2) returned.
fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to this process and nothing else owns
    // it yet.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads `program` as a device filter and attaches it to the cgroup at `dir`. A filter
/// berth attached there before is replaced in one step, so the cgroup is never left
/// without one; programs others attached are kept.
pub(crate) fn attach_device_filter(dir: &Path, program: &[Insn]) -> Result<(), CgroupError> {
    let fail = |step: &'static str, source: io::Error| CgroupError::DeviceFilter {
        step,
        path: dir.to_path_buf(),
        source,
        detail: String::new(),
    };
    let cgroup = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| fail("open the cgroup", e))?;
    let new = load(program).map_err(|(source, log)| CgroupError::DeviceFilter {
        step: "load",
        path: dir.to_path_buf(),
        source,
        detail: if log.is_empty() {
            String::new()
        } else {
            format!("; the verifier says: {log}")
        },
    })?;
    let mut old = previous_filters(&cgroup).map_err(|e| fail("query the attached filters", e))?;

    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: new.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    let replaced = old.pop();
    if let Some(previous) = &replaced {
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = previous.as_raw_fd() as u32;
    }
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| fail("attach", e))?;
    // More than one earlier filter only happens if something went wrong before; the new
    // one already holds, so the others only tighten what it allows.
    for previous in old {
        let mut attr = ProgAttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: previous.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
            replace_bpf_fd: 0,
        };
        bpf(BPF_PROG_DETACH, &mut attr).map_err(|e| fail("detach an older filter", e))?;
    }
    Ok(())
}

/// Loads the program; on failure loads it again with the verifier's log switched on, and
/// returns the error with the log.
fn load(program: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
    let license = CString::new("Apache-2.0").expect("no NUL inside");
    let mut name = [0u8; 16];
    name[..PROGRAM_NAME.len()].copy_from_slice(PROGRAM_NAME);
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: BPF_CGROUP_DEVICE,
    };
    let source = match bpf(BPF_PROG_LOAD, &mut attr).and_then(owned_fd) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; LOG_SIZE];
    attr.log_level = 1;
    attr.log_size = LOG_SIZE as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    let _ = bpf(BPF_PROG_LOAD, &mut attr);
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    Err((
        source,
        String::from_utf8_lossy(&log[..end]).trim().to_string(),
    ))
}

/// The device filters berth attached to `cgroup` earlier, opened.
fn previous_filters(cgroup: &File) -> io::Result<Vec<OwnedFd>> {
    let mut ids = [0u32; MAX_ATTACHED];
    let mut attr = ProgQueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: MAX_ATTACHED as u32,
        _pad: 0,
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    let count = (attr.prog_cnt as usize).min(MAX_ATTACHED);
    let mut found = Vec::new();
    for &id in &ids[..count] {
        let mut by_id = GetFdByIdAttr {
            prog_id: id,
            next_id: 0,
            open_flags: 0,
        };
        let prog = match bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id).and_then(owned_fd) {
            Ok(fd) => fd,
            // Detached and freed since the query.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let mut info = ProgInfo::default();
        let mut attr = InfoByFdAttr {
            bpf_fd: prog.as_raw_fd() as u32,
            info_len: size_of::<ProgInfo>() as u32,
            info: &mut info as *mut ProgInfo as u64,
        };
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
        if info.name.starts_with(PROGRAM_NAME) && info.name[PROGRAM_NAME.len()] == 0 {
            found.push(prog);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_match_the_kernel_layout() {
        assert_eq!(size_of::<Insn>(), 8);
        assert_eq!(size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(size_of::<ProgAttachAttr>(), 20);
        assert_eq!(std::mem::offset_of!(ProgQueryAttr, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(ProgQueryAttr, prog_cnt), 24);
        assert_eq!(std::mem::offset_of!(ProgInfo, name), 64);
    }

    #[test]
    fn registers_share_one_byte() {
        let insn = Insn::load_u32(2, 1, 4);
        assert_eq!((insn.code, insn.regs, insn.off), (0x61, 0x12, 4));
        assert_eq!(Insn::jump_if_not_equal_u32(4, u32::MAX).imm, -1);
    }
}
