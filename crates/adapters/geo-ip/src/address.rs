//! Which addresses are worth looking up: only globally routable ones. Private, loopback,
//! link-local, unique-local, documentation, shared (carrier-grade NAT) and other special-purpose
//! ranges name no place, and must not be sent to a third-party service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` may belong to a place (`std`'s `is_global` is not stable yet).
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && b & 0xc0 == 64)
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && b & 0xfe == 18)
        || a >= 240;
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
        || s[..6] == [0; 6];
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(raw: &str) -> bool {
        is_public(raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}")))
    }

    #[test]
    fn special_purpose_addresses_name_no_place() {
        for raw in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.10.20",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.7",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!public(raw), "{raw}");
        }
    }

    #[test]
    fn routable_addresses_are_public() {
        for raw in [
            "81.2.69.142",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2001:218::1",
            "2a00:1450:4001::1",
            "::ffff:81.2.69.142",
        ] {
            assert!(public(raw), "{raw}");
        }
    }
}
