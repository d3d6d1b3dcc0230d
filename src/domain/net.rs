//! IP addresses as the app compares them: IPv4-mapped IPv6 addresses are
//! their IPv4 address, an IPv6 client counts by its /64 (one subscriber's
//! network), and `TRUSTED_PROXIES` entries are addresses or CIDR ranges.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
};

/// `::ffff:a.b.c.d` is `a.b.c.d`; everything else is itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The address a client is counted by in the limits: IPv4 as is, IPv6 by its
/// /64 (the rest of the address is the host's to choose, 2^64 of them).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// An address or a CIDR range (`10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask32(u32::from(ip), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(bits: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        bits & (!0u32 << (32 - u32::from(prefix)))
    }
}

fn mask128(bits: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits & (!0u128 << (128 - u32::from(prefix)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an IP address or a CIDR range such as 10.0.0.0/8, got {0:?}")]
pub struct BadIpNet(pub String);

impl FromStr for IpNet {
    type Err = BadIpNet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadIpNet(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr = canonical(addr.trim().parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
        };
        let network = match addr {
            IpAddr::V4(v4) => IpAddr::V4(mask32(u32::from(v4), prefix).into()),
            IpAddr::V6(v6) => IpAddr::V6(mask128(u128::from(v6), prefix).into()),
        };
        Ok(IpNet { network, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_and_single_addresses_match_what_they_cover() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("::1")));
    }

    #[test]
    fn ipv4_mapped_peers_are_their_ipv4_address() {
        let net: IpNet = "127.0.0.1".parse().unwrap();
        assert!(net.contains(ip("::ffff:127.0.0.1")));
        assert_eq!(canonical(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(client_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in [
            "",
            "proxy.local",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/x",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?}");
        }
    }
}
