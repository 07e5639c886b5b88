//! The size strings users write: task CPU ("512", "1 vCPU"), task memory ("2048", "2GB")
//! and log file sizes ("10m").

/// CPU units per vCPU, as ECS counts them.
pub const UNITS_PER_VCPU: u64 = 1024;

/// Task CPU in units: "512" or "0.5 vCPU" (any case, space optional). Fractions of a
/// vCPU are rounded to the nearest unit.
pub fn parse_cpu_units(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is not a CPU amount (give CPU units such as 512, or vCPUs such as \"1 vCPU\")"
        )
    };
    let t = text.trim();
    let units = if let Some(number) = strip_suffix_ignore_case(t, "vcpu") {
        let vcpus = parse_decimal(number.trim_end()).ok_or_else(bad)?;
        (vcpus * UNITS_PER_VCPU as f64).round() as u64
    } else {
        t.parse::<u64>().map_err(|_| bad())?
    };
    if units == 0 {
        return Err(format!("{text:?} is no CPU at all"));
    }
    Ok(units)
}

/// Task memory in MiB: "2048", "512MB", "2GB", "1.5 GB" (GB counted as 1024 MiB, as ECS
/// does). Fractions are rounded to the nearest MiB.
pub fn parse_memory_mib(text: &str) -> Result<u64, String> {
    let bad =
        || format!("{text:?} is not a memory size (give MiB such as 2048, or GB such as \"2GB\")");
    let t = text.trim();
    let units: [(&str, f64); 4] = [("gib", 1024.0), ("gb", 1024.0), ("mib", 1.0), ("mb", 1.0)];
    let mib = match units
        .iter()
        .find_map(|(suffix, scale)| strip_suffix_ignore_case(t, suffix).map(|n| (n, scale)))
    {
        Some((number, scale)) => {
            let value = parse_decimal(number.trim_end()).ok_or_else(bad)?;
            (value * scale).round() as u64
        }
        None => t.parse::<u64>().map_err(|_| bad())?,
    };
    if mib == 0 {
        return Err(format!("{text:?} is no memory at all"));
    }
    Ok(mib)
}

/// A byte size as Docker's log options write it: "100k", "10m", "1g", "1.5GB", "4096"
/// (binary multiples; an optional "b" or "ib" after the letter).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a size (such as 100k, 10m or 1g)");
    let mut t = text.trim().to_ascii_lowercase();
    if t.ends_with('b') {
        t.pop();
        if t.ends_with('i') {
            t.pop();
        }
    }
    let scale: u64 = match t.chars().last() {
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some('t') => 1 << 40,
        _ => 1,
    };
    if scale != 1 {
        t.pop();
    }
    let value = parse_decimal(t.trim_end()).ok_or_else(bad)?;
    let bytes = (value * scale as f64).round();
    if bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Digits with at most one decimal point ("1", "0.5", ".25"); no signs, exponents or
/// the words f64 parsing accepts.
fn parse_decimal(text: &str) -> Option<f64> {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let points = text.chars().filter(|&c| c == '.').count();
    if digits == 0 || points > 1 || digits + points != text.len() {
        return None;
    }
    text.parse().ok()
}

fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let split = text.len().checked_sub(suffix.len())?;
    let (head, tail) = (text.get(..split)?, text.get(split..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_accepts_units_and_vcpus() {
        assert_eq!(parse_cpu_units("512"), Ok(512));
        assert_eq!(parse_cpu_units("1 vCPU"), Ok(1024));
        assert_eq!(parse_cpu_units("0.5 vCPU"), Ok(512));
        assert_eq!(parse_cpu_units(".25 vcpu"), Ok(256));
        assert_eq!(parse_cpu_units("2vcpu"), Ok(2048));
        assert_eq!(parse_cpu_units(" 4 VCPU "), Ok(4096));
    }

    #[test]
    fn cpu_refuses_what_is_not_an_amount() {
        for text in [
            "",
            "lots",
            "-1",
            "1.5",
            "1e3 vCPU",
            "vCPU",
            "0",
            "0 vCPU",
            "1..5 vCPU",
        ] {
            assert!(parse_cpu_units(text).is_err(), "{text:?} accepted");
        }
        assert_eq!(
            parse_cpu_units("lots").unwrap_err(),
            "\"lots\" is not a CPU amount (give CPU units such as 512, or vCPUs such as \"1 vCPU\")"
        );
    }

    #[test]
    fn memory_accepts_mib_and_gb() {
        assert_eq!(parse_memory_mib("2048"), Ok(2048));
        assert_eq!(parse_memory_mib("2GB"), Ok(2048));
        assert_eq!(parse_memory_mib("2 GB"), Ok(2048));
        assert_eq!(parse_memory_mib("512MB"), Ok(512));
        assert_eq!(parse_memory_mib("1.5GB"), Ok(1536));
        assert_eq!(parse_memory_mib("0.5 gb"), Ok(512));
        assert_eq!(parse_memory_mib("1GiB"), Ok(1024));
    }

    #[test]
    fn memory_refuses_what_is_not_a_size() {
        for text in ["", "big", "2TB", "-5", "GB", "0", "1.5"] {
            assert!(parse_memory_mib(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn byte_sizes_are_binary_like_docker_log_options() {
        assert_eq!(parse_byte_size("100k"), Ok(100 * 1024));
        assert_eq!(parse_byte_size("10m"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_byte_size("1g"), Ok(1 << 30));
        assert_eq!(parse_byte_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_byte_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("1.5k"), Ok(1536));
        for text in ["", "m", "ten", "-1m", "0"] {
            assert!(parse_byte_size(text).is_err(), "{text:?} accepted");
        }
    }
}
