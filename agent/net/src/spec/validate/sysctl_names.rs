//! Sysctl names of the file → paths below `/proc/sys`. Only `net/*` is accepted.

fn check_component(c: &str) -> Result<(), String> {
    if c.is_empty()
        || c == "."
        || c == ".."
        || c.contains('\0')
        || c.chars().any(char::is_whitespace)
    {
        return Err(format!("{c:?} is not a sysctl name component"));
    }
    Ok(())
}

/// The path below /proc/sys of a global sysctl key: `net.ipv4.ip_forward` or
/// `net/ipv4/conf/eth0.100/rp_filter`. Only `net.*` is Hearth's.
pub(crate) fn sysctl_path(key: &str) -> Result<String, String> {
    let parts: Vec<&str> = if key.contains('/') {
        key.split('/').collect()
    } else {
        key.split('.').collect()
    };
    if parts.first() != Some(&"net") || parts.len() < 3 {
        return Err("only net.* sysctls (like net.ipv4.ip_forward) are Hearth's to set".into());
    }
    for c in &parts {
        check_component(c)?;
    }
    Ok(parts.join("/"))
}

/// The path of a per-interface sysctl: `ipv4.rp_filter` on `br-ext` is
/// `net/ipv4/conf/br-ext/rp_filter`; `ipv6.neigh.retrans_time_ms` is under `net/ipv6/neigh/`.
pub(crate) fn interface_sysctl_path(dev: &str, key: &str) -> Result<String, String> {
    let parts: Vec<&str> = key.split('.').collect();
    let fam = match parts.first() {
        Some(&"ipv4") => "ipv4",
        Some(&"ipv6") => "ipv6",
        _ => return Err("a per-interface sysctl starts with ipv4. or ipv6.".into()),
    };
    let path = match parts.as_slice() {
        [_, "neigh", name] => format!("net/{fam}/neigh/{dev}/{name}"),
        [_, name] => format!("net/{fam}/conf/{dev}/{name}"),
        _ => return Err("expected ipv4.NAME, ipv6.NAME or ipv4.neigh.NAME".into()),
    };
    for c in &parts[1..] {
        check_component(c)?;
    }
    Ok(path)
}
