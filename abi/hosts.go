package abi

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// HostPattern is one parsed entry of allowed_outbound_hosts:
//
//	scheme://host[:port]
//
// scheme is "http", "https" or "*". host is a DNS name, "*" (any host),
// "*.example.com" (any name below example.com, not example.com itself), an
// IPv4 literal or a bracketed IPv6 literal. port is a number or "*"; when it
// is left out the scheme's default port (80 or 443) is meant.
type HostPattern struct {
	Scheme string // "http", "https" or "*"
	Host   string // lower case, without a trailing dot; "*" or "*.suffix" for wildcards
	Port   int    // 1..65535, PortDefault, or PortAny
}

// Port values with a special meaning.
const (
	PortDefault = 0  // the scheme's default port
	PortAny     = -1 // any port
)

// ParseHostPattern parses an allowed_outbound_hosts entry. It rejects paths,
// queries, user info and malformed hosts, so that matching never has to
// guess what an entry meant.
func ParseHostPattern(s string) (HostPattern, error) {
	var p HostPattern
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return p, fmt.Errorf("%q must have the form scheme://host[:port]", s)
	}
	switch scheme {
	case "http", "https", "*":
		p.Scheme = scheme
	default:
		return p, fmt.Errorf("%q: scheme must be http, https or *", s)
	}
	if strings.ContainsAny(rest, "/?#@ \t\r\n") {
		return p, fmt.Errorf("%q: only scheme://host[:port] is allowed (no path, query, user info or spaces)", s)
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return p, fmt.Errorf("%q: unclosed '[' in IPv6 address", s)
		}
		host, port = rest[:end+1], strings.TrimPrefix(rest[end+1:], ":")
		if len(rest) > end+1 && rest[end+1] != ':' {
			return p, fmt.Errorf("%q: unexpected text after IPv6 address", s)
		}
		if len(rest) > end+1 && port == "" {
			return p, fmt.Errorf("%q: empty port", s)
		}
	} else if i := strings.LastIndex(rest, ":"); i >= 0 {
		host, port = rest[:i], rest[i+1:]
		if port == "" {
			return p, fmt.Errorf("%q: empty port", s)
		}
	}
	h, err := normalizePatternHost(host)
	if err != nil {
		return p, fmt.Errorf("%q: %v", s, err)
	}
	p.Host = h
	switch port {
	case "":
		p.Port = PortDefault
	case "*":
		p.Port = PortAny
	default:
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return p, fmt.Errorf("%q: port must be 1-65535 or *", s)
		}
		p.Port = n
	}
	return p, nil
}

func normalizePatternHost(host string) (string, error) {
	if host == "" {
		return "", errors.New("empty host")
	}
	if host == "*" {
		return host, nil
	}
	if strings.HasPrefix(host, "[") {
		// host is "[...]" (the caller cut it at the first ']'); exactly one
		// bracket comes off each end.
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", fmt.Errorf("%s is not an IPv6 address", host)
		}
		if addr.Is4In6() {
			// NormalizeHost unmaps request hosts, so a mapped pattern would
			// never match anything.
			return addr.Unmap().String(), nil
		}
		return "[" + addr.String() + "]", nil
	}
	wildcard := strings.HasPrefix(host, "*.")
	name := strings.TrimSuffix(strings.ToLower(strings.TrimPrefix(host, "*.")), ".")
	if addr, err := netip.ParseAddr(name); err == nil {
		if wildcard || !addr.Is4() {
			return "", fmt.Errorf("%s: IP addresses cannot take wildcards and IPv6 needs brackets", host)
		}
		return addr.String(), nil
	}
	if err := checkDNSName(name); err != nil {
		return "", err
	}
	if wildcard {
		return "*." + name, nil
	}
	return name, nil
}

func checkDNSName(name string) error {
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("%q is not a valid host name", name)
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a valid host name", name)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is not a valid host name", name)
			}
		}
	}
	// A numeric last label makes the name look like an IPv4 address:
	// "*.0.1" would match 127.0.0.1, and resolvers read "1.2.3" or
	// "2130706433" as shorthand addresses. No real host name ends that way.
	if i := strings.LastIndex(name, "."); strings.Trim(name[i+1:], "0123456789") == "" {
		return fmt.Errorf("%q is not a valid host name (it ends in a number; write IPv4 addresses in full)", name)
	}
	return nil
}

// String formats the pattern in its canonical form.
func (p HostPattern) String() string {
	s := p.Scheme + "://" + p.Host
	switch p.Port {
	case PortDefault:
	case PortAny:
		s += ":*"
	default:
		s += ":" + strconv.Itoa(p.Port)
	}
	return s
}

// Literal reports whether the pattern names one exact host: only literal
// grants may reach loopback, private or link-local addresses.
func (p HostPattern) Literal() bool {
	return p.Host != "*" && !strings.HasPrefix(p.Host, "*.")
}

// NormalizeHost lower-cases a host taken from a parsed URL, strips one
// trailing dot and brackets IPv6 literals, so it compares equal to a
// pattern's host.
func NormalizeHost(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if addr, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if addr.Is4In6() {
			addr = addr.Unmap()
		}
		if addr.Is6() {
			return "[" + addr.String() + "]"
		}
		return addr.String()
	}
	return host
}

// DefaultPort returns the port a scheme uses when a URL names none.
func DefaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// Matches reports whether a request to scheme://host:port is allowed by the
// pattern. host must already be normalised with NormalizeHost.
func (p HostPattern) Matches(scheme, host string, port int) bool {
	if p.Scheme != "*" && p.Scheme != scheme {
		return false
	}
	switch p.Port {
	case PortAny:
	case PortDefault:
		if port != DefaultPort(scheme) {
			return false
		}
	default:
		if port != p.Port {
			return false
		}
	}
	return hostMatches(p.Host, host)
}

func hostMatches(pattern, host string) bool {
	if pattern == "*" {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	return pattern == host
}

// Covers reports whether every request q allows is also allowed by p, so a
// grant of q is no wider than a request for p.
func (p HostPattern) Covers(q HostPattern) bool {
	if p.Scheme != "*" && p.Scheme != q.Scheme {
		return false
	}
	if !p.coversPorts(q) {
		return false
	}
	if p.Host == "*" {
		return true
	}
	if q.Host == "*" {
		return false
	}
	if suffix, ok := strings.CutPrefix(p.Host, "*."); ok {
		return strings.HasSuffix(q.Host, "."+suffix)
	}
	return p.Host == q.Host
}

// coversPorts reports whether p allows every port q allows, for each scheme
// q allows. Ports are compared as numbers, so "https://h" and
// "https://h:443" cover each other.
func (p HostPattern) coversPorts(q HostPattern) bool {
	if p.Port == PortAny {
		return true
	}
	if q.Port == PortAny {
		return false
	}
	schemes := []string{q.Scheme}
	if q.Scheme == "*" {
		schemes = []string{"http", "https"}
	}
	for _, s := range schemes {
		if p.portFor(s) != q.portFor(s) {
			return false
		}
	}
	return true
}

// portFor returns the port a pattern with a fixed port allows for scheme.
func (p HostPattern) portFor(scheme string) int {
	if p.Port == PortDefault {
		return DefaultPort(scheme)
	}
	return p.Port
}
