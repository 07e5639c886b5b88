use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::container::Container;
use crate::error::{Error, Result};

/// runc's `update` flags; sizes take runc's forms (bytes, or 512k, 64m, 1g...).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A JSON file of linux.resources to apply, or - for stdin; the flags below win
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CFS period in microseconds
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period (-1: no limit)
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// Realtime period in microseconds
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in microseconds per period
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs the container may use (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap (-1: unlimited swap)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of processes (0 or -1: no limit)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

pub fn run(root: &Path, args: &Args) -> Result<i32> {
    let mut change = match &args.resources {
        Some(path) => read_resources(path)?,
        None => LinuxResources::default(),
    };
    apply_flags(&mut change, args)?;
    Container::load(root, &args.id)?.update(&change)?;
    Ok(0)
}

fn read_resources(path: &Path) -> Result<LinuxResources> {
    let mut text = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(|e| Error::io("read", "standard input", e))?;
    } else {
        text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    }
    let de = &mut serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let name = if path == Path::new("-") {
            "--resources -".to_string()
        } else {
            path.display().to_string()
        };
        match field.as_str() {
            "." => Error::Config(format!("{name}: {}", e.into_inner())),
            _ => Error::Config(format!("{name}: {field}: {}", e.into_inner())),
        }
    })
}

fn apply_flags(r: &mut LinuxResources, a: &Args) -> Result<()> {
    let cpu_given = a.cpu_period.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_share.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some();
    if cpu_given {
        let mut cpu: LinuxCpu = r.cpu().clone().unwrap_or_default();
        if a.cpu_period.is_some() {
            cpu.set_period(a.cpu_period);
        }
        if a.cpu_quota.is_some() {
            cpu.set_quota(a.cpu_quota);
        }
        if a.cpu_share.is_some() {
            cpu.set_shares(a.cpu_share);
        }
        if a.cpu_rt_period.is_some() {
            cpu.set_realtime_period(a.cpu_rt_period);
        }
        if a.cpu_rt_runtime.is_some() {
            cpu.set_realtime_runtime(a.cpu_rt_runtime);
        }
        if let Some(cpus) = &a.cpuset_cpus {
            cpu.set_cpus(Some(cpus.clone()));
        }
        if let Some(mems) = &a.cpuset_mems {
            cpu.set_mems(Some(mems.clone()));
        }
        r.set_cpu(Some(cpu));
    }
    let sizes = [
        ("--memory", &a.memory),
        ("--memory-reservation", &a.memory_reservation),
        ("--memory-swap", &a.memory_swap),
    ];
    let mut parsed = [None; 3];
    for (slot, (flag, value)) in parsed.iter_mut().zip(sizes) {
        if let Some(text) = value {
            *slot = Some(parse_size(text).ok_or_else(|| {
                Error::Config(format!(
                    "{flag}: {text:?} is not a size (bytes, or a number with k, m, g or t; -1 for no limit)"
                ))
            })?);
        }
    }
    if parsed.iter().any(Option::is_some) {
        let mut memory: LinuxMemory = r.memory().unwrap_or_default();
        let [limit, reservation, swap] = parsed;
        if limit.is_some() {
            memory.set_limit(limit);
        }
        if reservation.is_some() {
            memory.set_reservation(reservation);
        }
        if swap.is_some() {
            memory.set_swap(swap);
        }
        r.set_memory(Some(memory));
    }
    if let Some(limit) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        r.set_pids(Some(pids));
    }
    if let Some(weight) = a.blkio_weight {
        let mut io: LinuxBlockIo = r.block_io().clone().unwrap_or_default();
        io.set_weight(Some(weight));
        r.set_block_io(Some(io));
    }
    Ok(())
}

/// Bytes as runc's flags take them: a number with an optional binary unit (k, m, g, t,
/// p; "kb", "KiB" and the like alike), or -1 for no limit.
fn parse_size(text: &str) -> Option<i64> {
    let t = text.trim();
    if t == "-1" {
        return Some(-1);
    }
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = lower[digits.len()..]
        .trim_end_matches('b')
        .trim_end_matches('i');
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    let n: f64 = digits.trim().parse().ok().filter(|n: &f64| *n >= 0.0)?;
    let bytes = n * (1u64 << shift) as f64;
    (bytes <= i64::MAX as f64).then_some(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_in_runcs_forms() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("512kb"), Some(512 << 10));
        assert_eq!(parse_size("-1"), Some(-1));
        for bad in ["", "lots", "12x", "-5", "m", "1.2.3m"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
