package egress

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/millrace/millrace/abi"
)

// target is one checked destination: the origin a request or redirect hop
// goes to, and what the grant that allowed it permits.
type target struct {
	scheme string // "http" or "https"
	host   string // abi.NormalizeHost form: lower case, no trailing dot, IPv6 in brackets
	port   int
	// literal is true when a grant naming this host literally matched;
	// only then may the host resolve to a loopback or private address.
	literal bool
}

// String formats the origin as scheme://host:port. Error messages use it
// rather than the whole URL, whose path or query may carry credentials.
func (t target) String() string {
	return t.scheme + "://" + t.host + ":" + strconv.Itoa(t.port)
}

// ip returns the host as an address when it is an IP literal.
func (t target) ip() (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.Trim(t.host, "[]"))
	return a, err == nil
}

// checkURL parses an absolute URL, rejects what http_send does not accept
// and checks its origin against the allow list. It drops the fragment, which
// is never sent anyway.
func (p *Policy) checkURL(raw string) (*url.URL, target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL; the message of its cause is enough.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, target{}, errorf(abi.ErrnoInvalidArgument, err, "invalid URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, target{}, errorf(abi.ErrnoInvalidArgument, nil, "invalid URL: scheme must be http or https, not %q", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, target{}, errorf(abi.ErrnoInvalidArgument, nil, "invalid URL: %s:// URL needs a host", u.Scheme)
	case u.User != nil:
		// user:pass@ would become an Authorization header and is a classic way
		// to make a URL look like it goes somewhere else.
		return nil, target{}, errorf(abi.ErrnoInvalidArgument, nil, "invalid URL: user info (user:pass@) is not allowed; send an Authorization header instead")
	}
	u.Fragment, u.RawFragment = "", ""
	t, err := p.check(u.Scheme, u.Hostname(), u.Port())
	if err != nil {
		return nil, target{}, err
	}
	return u, t, nil
}

// check validates scheme, host and port as a URL or a dial address gives
// them (host without brackets, port possibly empty) and matches them
// against the allow list.
func (p *Policy) check(scheme, hostname, port string) (target, error) {
	if scheme != "http" && scheme != "https" {
		return target{}, errorf(abi.ErrnoInvalidArgument, nil, "invalid URL: scheme must be http or https, not %q", scheme)
	}
	host, err := normalizeRequestHost(hostname)
	if err != nil {
		return target{}, err
	}
	t := target{scheme: scheme, host: host, port: abi.DefaultPort(scheme)}
	if port != "" {
		n, err := strconv.Atoi(port)
		// Only the canonical spelling, so that every layer reads the same port.
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return target{}, errorf(abi.ErrnoInvalidArgument, nil, "invalid URL: port %q is not a number from 1 to 65535", port)
		}
		t.port = n
	}
	allowed := false
	for _, pat := range p.Allowed {
		if pat.Matches(t.scheme, t.host, t.port) {
			allowed = true
			if pat.Literal() {
				t.literal = true
				break
			}
		}
	}
	if !allowed {
		return target{}, errorf(abi.ErrnoDenied, nil, "denied: %s is not in allowed_outbound_hosts", t)
	}
	return t, nil
}

// normalizeRequestHost normalizes a URL's host with abi.NormalizeHost and
// accepts only an IP literal or an ASCII DNS name. Anything else (Unicode,
// IPv6 zones, the numeric shorthands some resolvers read as IPv4 such as
// "0x7f.1" or "2130706433") could be read differently by the matcher, the
// resolver and the TLS stack, so it is refused rather than guessed at.
func normalizeRequestHost(hostname string) (string, error) {
	invalid := func(why string) error {
		return errorf(abi.ErrnoInvalidArgument, nil, "invalid URL: host %q %s", hostname, why)
	}
	if hostname == "" {
		return "", invalid("is empty")
	}
	for i := 0; i < len(hostname); i++ {
		// Checked before lower-casing: strings.ToLower maps some non-ASCII
		// letters (the Kelvin sign) to ASCII ones.
		if hostname[i] >= 0x80 {
			return "", invalid("is not an IP address or an ASCII DNS name (use punycode for international names)")
		}
	}
	if a, err := netip.ParseAddr(hostname); err == nil {
		if a.Zone() != "" {
			return "", invalid("has an IPv6 zone")
		}
		return abi.NormalizeHost(hostname), nil
	}
	host := abi.NormalizeHost(hostname)
	if len(host) > 253 {
		return "", invalid("is longer than 253 bytes")
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", invalid("is not a valid DNS name (empty or over-long label)")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			// Underscores are not valid in host names but occur in real
			// ones; they cannot confuse any parser.
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", invalid("is not an IP address or an ASCII DNS name (use punycode for international names)")
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", invalid("ends in a numeric label: write IP addresses in dotted-decimal or bracketed IPv6 form")
	}
	return host, nil
}

// unsafeHeaders are request headers a guest may not set. The host owns the
// connection (hop-by-hop headers, Content-Length, Transfer-Encoding, Expect,
// Upgrade), the Host header must name the granted host (overriding it would
// let a grant for one name reach other virtual hosts on the same server),
// and no proxy is ever used (Proxy-*). They are dropped silently, as
// browsers drop the forbidden headers of fetch.
var unsafeHeaders = map[string]bool{
	"Connection":          true,
	"Content-Length":      true,
	"Expect":              true,
	"Host":                true,
	"Keep-Alive":          true,
	"Proxy-Authorization": true,
	"Proxy-Connection":    true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// requestHeaders validates the guest's headers, canonicalises their names
// and drops unsafeHeaders.
func requestHeaders(in map[string][]string) (http.Header, error) {
	h := make(http.Header, len(in))
	for name, values := range in {
		if !isToken(name) {
			return nil, errorf(abi.ErrnoInvalidArgument, nil, "invalid header name %q", name)
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return nil, errorf(abi.ErrnoInvalidArgument, nil, "invalid value for header %s: control characters (CR, LF, NUL, ...) are not allowed", name)
			}
		}
		key := http.CanonicalHeaderKey(name)
		if unsafeHeaders[key] {
			continue
		}
		h[key] = append(h[key], values...)
	}
	return h, nil
}

// checkMethod returns the request method, GET when empty.
func checkMethod(m string) (string, error) {
	switch {
	case m == "":
		return http.MethodGet, nil
	case !isToken(m):
		return "", errorf(abi.ErrnoInvalidArgument, nil, "invalid method %q", m)
	case strings.EqualFold(m, http.MethodConnect):
		// CONNECT asks the server to open a tunnel to another host.
		return "", errorf(abi.ErrnoInvalidArgument, nil, "method CONNECT is not supported")
	}
	return m, nil
}

// isToken reports whether s is an RFC 9110 token, the syntax of methods and
// header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than tab: CR and LF
// would let a value inject headers or a second request.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// splitAddr splits the host:port a Transport dials.
func splitAddr(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", errorf(abi.ErrnoInvalidArgument, err, "invalid address %q: %v", addr, err)
	}
	return host, port, nil
}
