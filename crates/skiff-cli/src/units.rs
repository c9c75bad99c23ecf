//! Sizes (`64m`, `512KiB`) and durations (`5s`, `250ms`) as users type them.

use std::time::Duration;

/// Docker's size syntax: a number with an optional b/k/m/g suffix (binary units), also
/// accepting `KiB`/`MiB`/`GiB` and `KB`/`MB`/`GB` spelled out, and decimals (`1.5g`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("invalid size {s:?}: expected e.g. 64m, 1.5g, 512k or 1048576"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {unit:?} (use b, k, m or g)"
            ))
        }
    };
    let bytes = (n * mult as f64).round();
    if bytes >= u64::MAX as f64 {
        return Err(format!("invalid size {s:?}: too large"));
    }
    if bytes < 1.0 {
        return Err(format!("invalid size {s:?}: must be greater than zero"));
    }
    Ok(bytes as u64)
}

/// A memory limit (`--memory`, compose's `memory`): a size, where a bare number under 1 MiB is
/// refused. Docker reads `-m 64` as 64 bytes too, and no guest runs in that: the user meant
/// megabytes, and a guest killed at start (exit 137) would not tell them so.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let bytes = parse_size(s)?;
    let bare = s.trim().chars().all(|c| c.is_ascii_digit() || c == '.');
    if bare && bytes < 1 << 20 {
        let t = s.trim();
        return Err(format!(
            "memory {t:?} is {bytes} bytes, too little for any guest: did you mean {t}m? (units: k, m, g)"
        ));
    }
    Ok(bytes)
}

/// A listening address as people type it: `IP:PORT`, `[::1]:PORT`, `localhost:PORT`, `:PORT`
/// (every interface, as Go servers and Docker's `-p PORT:…` read it) or `PORT` alone (loopback,
/// skiff's safe default). Other host names are refused: which address a name resolves to is not
/// something a listener should leave to DNS.
pub fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv4Addr, SocketAddr};
    let t = s.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid address {s:?}: {p:?} is not a port (0 to 65535)"))
    };
    if let Some(p) = t.strip_prefix(':') {
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port(p)?)));
    }
    if let Some(p) = t.strip_prefix("localhost:") {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port(p)?)));
    }
    if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port(t)?)));
    }
    Err(format!(
        "invalid address {s:?}: expected IP:PORT, [IPv6]:PORT, localhost:PORT, :PORT (every interface) or PORT (loopback)"
    ))
}

/// `run -p`, as Docker's `-p` reads it: `HOST_PORT:PORT` (every interface, as Docker binds it),
/// `IP:HOST_PORT:PORT` (`127.0.0.1:8080:80` for loopback only), or a listen address as
/// `--listen` takes it (`localhost:8080`, `:8080`, `8080`). The component's own port is not
/// used (it listens on none: skiff serves it), so any number is accepted there.
pub fn parse_publish(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv4Addr, SocketAddr};
    let t = s.trim();
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let parts: Vec<&str> = t.rsplitn(3, ':').collect();
    let host_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid -p {s:?}: {p:?} is not a port (0 to 65535)"))
    };
    match parts[..] {
        [inner, outer] if digits(inner) && digits(outer) => {
            Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, host_port(outer)?)))
        }
        [inner, outer, ip] if digits(inner) && digits(outer) && !ip.is_empty() => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let ip: std::net::IpAddr = match ip {
                "localhost" => Ipv4Addr::LOCALHOST.into(),
                ip => ip.parse().map_err(|_| {
                    format!(
                        "invalid -p {s:?}: {ip:?} is not an IP address (e.g. 127.0.0.1:8080:80)"
                    )
                })?,
            };
            Ok(SocketAddr::from((ip, host_port(outer)?)))
        }
        _ => parse_listen(t)
            .map_err(|e| format!("{e}; or as Docker's -p: HOST_PORT:PORT, IP:HOST_PORT:PORT")),
    }
}

/// `--max-open`: a count of handles, at least the engine's minimum (a guest needs a few
/// before its first instruction).
pub fn parse_max_open(s: &str) -> Result<u32, String> {
    let min = skiff_engine::MIN_MAX_OPEN;
    match s.trim().parse::<u32>() {
        Ok(n) if n as usize >= min => Ok(n),
        _ => Err(skiff_engine::invalid_max_open(s)),
    }
}

/// A duration with a unit: `ms`, `s`, `m` or `h` (`1500ms`, `5s`, `2m`). A bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 5s, 250ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ))
        }
    };
    if !(secs > 0.0 && secs < 1e9) {
        return Err(format!("invalid duration {s:?}: must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_as_docker_takes_it() {
        let p = |s: &str| parse_publish(s).map(|a| a.to_string());
        assert_eq!(p("8080:80").unwrap(), "0.0.0.0:8080");
        assert_eq!(p("127.0.0.1:8081:80").unwrap(), "127.0.0.1:8081");
        assert_eq!(p("localhost:8082:80").unwrap(), "127.0.0.1:8082");
        assert_eq!(p("[::1]:8083:80").unwrap(), "[::1]:8083");
        assert_eq!(p("localhost:8084").unwrap(), "127.0.0.1:8084");
        assert_eq!(p("8085").unwrap(), "127.0.0.1:8085");
        assert_eq!(p(":8086").unwrap(), "0.0.0.0:8086");
        assert!(p("99999:80").unwrap_err().contains("not a port"));
        assert!(p("example.com:80:80").unwrap_err().contains("not an IP"));
        assert!(p("web").unwrap_err().contains("HOST_PORT:PORT"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12q").unwrap_err().contains("unit"));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("0.5k"), Ok(512));
        assert!(parse_size("1e400").is_err());
        assert!(parse_size("99999999999g")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn memory_wants_a_unit_below_a_mebibyte() {
        assert_eq!(parse_memory("64m"), Ok(64 << 20));
        assert_eq!(parse_memory("1.5g"), Ok(3 << 29));
        assert_eq!(parse_memory("512k"), Ok(512 << 10));
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert!(parse_memory("64")
            .unwrap_err()
            .contains("did you mean 64m?"));
    }

    #[test]
    fn listen_addresses_as_typed() {
        let a = |s: &str| parse_listen(s).map(|a| a.to_string());
        assert_eq!(a("127.0.0.1:8099").as_deref(), Ok("127.0.0.1:8099"));
        assert_eq!(a("[::1]:8099").as_deref(), Ok("[::1]:8099"));
        assert_eq!(a("localhost:8099").as_deref(), Ok("127.0.0.1:8099"));
        assert_eq!(a(":8099").as_deref(), Ok("0.0.0.0:8099"));
        assert_eq!(a("8099").as_deref(), Ok("127.0.0.1:8099"));
        assert!(a("example.com:80").unwrap_err().contains("localhost:PORT"));
        assert!(a(":99999").unwrap_err().contains("not a port"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5x").unwrap_err().contains("unit"));
    }
}
