package egress

import "net/netip"

// addrRange is a block of addresses that a wildcard grant may not reach,
// with the word used for it in error messages.
type addrRange struct {
	prefix netip.Prefix
	kind   string
}

// blockedRanges lists the special-purpose blocks of the IANA registries that
// are not globally reachable. The first match names the kind, so narrower
// blocks come before the wider ones that contain them.
var blockedRanges = func() []addrRange {
	table := []struct{ prefix, kind string }{
		// IPv4.
		{"0.0.0.0/8", "unspecified"}, // "this network"; Linux routes 0.0.0.0 to the local host
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"}, // holds cloud metadata services
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "reserved"}, // IETF protocol assignments
		{"192.0.2.0/24", "documentation"},
		{"192.88.99.0/24", "reserved"}, // 6to4 relay anycast
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "reserved"}, // benchmarking
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"255.255.255.255/32", "broadcast"},
		{"240.0.0.0/4", "reserved"},
		// IPv6. IPv4-mapped and NAT64 addresses are classified by the IPv4
		// address they carry (see classify).
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "reserved"},         // IPv4-compatible, deprecated
		{"64:ff9b:1::/48", "private"}, // local-use NAT64
		{"100::/64", "reserved"},      // discard-only
		{"2001::/32", "reserved"},     // Teredo: tunnels to an IPv4 address
		{"2001:db8::/32", "documentation"},
		{"2002::/16", "reserved"}, // 6to4: tunnels to an IPv4 address
		{"3fff::/20", "documentation"},
		{"fc00::/7", "private"}, // unique local addresses
		{"fe80::/10", "link-local"},
		{"fec0::/10", "private"}, // site-local, deprecated
		{"ff00::/8", "multicast"},
	}
	out := make([]addrRange, len(table))
	for i, r := range table {
		out[i] = addrRange{netip.MustParsePrefix(r.prefix), r.kind}
	}
	return out
}()

var (
	nat64Prefix   = netip.MustParsePrefix("64:ff9b::/96")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// classify returns the kind of a non-public address ("loopback", "private",
// ...), or "" for an address that a wildcard grant may reach.
func classify(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	// Prefix.Contains never matches an address with a zone, so drop it: a
	// zone does not change which network the address is in.
	a = a.WithZone("")
	if a.Is4In6() {
		// The kernel connects ::ffff:a.b.c.d to the IPv4 address a.b.c.d.
		return classify(a.Unmap())
	}
	if nat64Prefix.Contains(a) {
		// A NAT64 gateway forwards to the embedded IPv4 address, which
		// must be public too.
		b := a.As16()
		return classify(netip.AddrFrom4([4]byte(b[12:])))
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	if a.Is6() && !globalUnicast.Contains(a) {
		// Everything outside 2000::/3 is unassigned or special.
		return "reserved"
	}
	return ""
}
