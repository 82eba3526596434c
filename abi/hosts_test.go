package abi

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseHostPattern(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		want HostPattern
		str  string // canonical form
	}{
		{"https://api.example.com", HostPattern{"https", "api.example.com", PortDefault}, "https://api.example.com"},
		{"https://API.Example.COM.:443", HostPattern{"https", "api.example.com", 443}, "https://api.example.com:443"},
		{"http://*.example.org", HostPattern{"http", "*.example.org", PortDefault}, "http://*.example.org"},
		{"*://*:*", HostPattern{"*", "*", PortAny}, "*://*:*"},
		{"http://*:8080", HostPattern{"http", "*", 8080}, "http://*:8080"},
		{"http://127.0.0.1:9000", HostPattern{"http", "127.0.0.1", 9000}, "http://127.0.0.1:9000"},
		{"http://[::1]:9000", HostPattern{"http", "[::1]", 9000}, "http://[::1]:9000"},
		{"http://[0:0:0:0:0:0:0:1]", HostPattern{"http", "[::1]", PortDefault}, "http://[::1]"},
		{"https://[2001:DB8::1]:*", HostPattern{"https", "[2001:db8::1]", PortAny}, "https://[2001:db8::1]:*"},
		// IPv4-mapped IPv6 is stored as the IPv4 address, as NormalizeHost
		// writes request hosts.
		{"http://[::ffff:10.0.0.1]", HostPattern{"http", "10.0.0.1", PortDefault}, "http://10.0.0.1"},
		{"http://localhost:65535", HostPattern{"http", "localhost", 65535}, "http://localhost:65535"},
		{"http://a-b.c1", HostPattern{"http", "a-b.c1", PortDefault}, "http://a-b.c1"},
	}
	for _, tc := range valid {
		p, err := ParseHostPattern(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, p, tc.in)
		require.Equal(t, tc.str, p.String(), tc.in)
	}

	invalid := []string{
		"", "example.com", "ftp://example.com", "HTTP://example.com", "http//example.com",
		"http://", "http://:80", "http://example.com:", "http://example.com:0",
		"http://example.com:65536", "http://example.com:080", "http://example.com:-1",
		"http://example.com:http", "http://example.com/", "http://example.com/path",
		"http://example.com?q", "http://example.com#f", "http://user@example.com",
		"http://user:pw@example.com", "http://exa mple.com", "http://example.com\n",
		"http://-a.com", "http://a-.com", "http://a..com", "http://.a.com", "http://a_b.com",
		"http://" + strings.Repeat("a", 64) + ".com", "http://" + strings.Repeat("a.", 127) + "com",
		"http://*.", "http://*.*.example.com", "http://a.*.com", "http://**.com", "http://*example.com",
		"http://*.1.2.3.4", "http://::1", "http://[::1", "http://[::1]x", "http://[::1]]", "http://[[::1]",
		"http://[::1]:", "http://[fe80::1%25eth0]", "http://[fe80::1%eth0]", "http://[1.2.3.4]",
		"http://[example.com]", "http://1.2.3", "http://*.0.1", "http://2130706433", "http://a.123",
		"http://bücher.example", "http://1.2.3.256",
	}
	for _, in := range invalid {
		_, err := ParseHostPattern(in)
		require.Error(t, err, in)
	}
}

func TestHostPatternLiteral(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"http://example.com":   true,
		"http://127.0.0.1:1":   true,
		"http://[::1]":         true,
		"*://localhost:*":      true,
		"http://*":             false,
		"http://*.example.com": false,
	} {
		p, err := ParseHostPattern(in)
		require.NoError(t, err)
		require.Equal(t, want, p.Literal(), in)
	}
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Example.COM.":       "example.com",
		"example.com":        "example.com",
		"::1":                "[::1]",
		"[::1]":              "[::1]",
		"0:0:0:0:0:0:0:1":    "[::1]",
		"::FFFF:127.0.0.1":   "127.0.0.1",
		"[::ffff:7f00:1]":    "127.0.0.1",
		"127.0.0.1":          "127.0.0.1",
		"2001:DB8::1":        "[2001:db8::1]",
		"localhost.":         "localhost",
		"LOCALHOST":          "localhost",
		"":                   "",
		"xn--bcher-kva.test": "xn--bcher-kva.test",
	} {
		require.Equal(t, want, NormalizeHost(in), in)
	}
}

func TestDefaultPort(t *testing.T) {
	t.Parallel()
	require.Equal(t, 80, DefaultPort("http"))
	require.Equal(t, 443, DefaultPort("https"))
}

func TestHostPatternMatches(t *testing.T) {
	t.Parallel()
	type req struct {
		scheme, host string
		port         int
	}
	cases := []struct {
		pattern string
		yes     []req
		no      []req
	}{
		{"https://api.example.com",
			[]req{{"https", "api.example.com", 443}},
			[]req{{"http", "api.example.com", 443}, {"https", "api.example.com", 80}, {"https", "api.example.com", 8443},
				{"https", "x.api.example.com", 443}, {"https", "example.com", 443}, {"https", "api.example.com.evil", 443}}},
		{"http://api.example.com:8080",
			[]req{{"http", "api.example.com", 8080}},
			[]req{{"http", "api.example.com", 80}, {"https", "api.example.com", 8080}}},
		{"*://api.example.com",
			[]req{{"http", "api.example.com", 80}, {"https", "api.example.com", 443}},
			[]req{{"http", "api.example.com", 443}, {"https", "api.example.com", 80}}},
		{"https://*.example.com:*",
			[]req{{"https", "a.example.com", 1}, {"https", "a.b.example.com", 443}},
			[]req{{"https", "example.com", 443}, {"https", "aexample.com", 443}, {"http", "a.example.com", 80},
				{"https", "a.example.com.evil", 443}}},
		{"http://*",
			[]req{{"http", "example.com", 80}, {"http", "127.0.0.1", 80}, {"http", "[::1]", 80}},
			[]req{{"http", "example.com", 8080}, {"https", "example.com", 443}}},
		{"http://127.0.0.1:9000",
			[]req{{"http", "127.0.0.1", 9000}},
			[]req{{"http", "127.0.0.2", 9000}, {"http", "localhost", 9000}, {"http", "[::1]", 9000}}},
		{"http://[::1]:9000",
			[]req{{"http", "[::1]", 9000}},
			[]req{{"http", "127.0.0.1", 9000}, {"http", "::1", 9000}}},
	}
	for _, tc := range cases {
		p, err := ParseHostPattern(tc.pattern)
		require.NoError(t, err)
		for _, r := range tc.yes {
			require.True(t, p.Matches(r.scheme, r.host, r.port), "%s should match %+v", tc.pattern, r)
		}
		for _, r := range tc.no {
			require.False(t, p.Matches(r.scheme, r.host, r.port), "%s should not match %+v", tc.pattern, r)
		}
	}
}

func TestHostPatternCovers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		p, q string
		want bool
	}{
		{"https://api.example.com", "https://api.example.com", true},
		{"https://api.example.com", "https://api.example.com:443", true},
		{"https://api.example.com:443", "https://api.example.com", true},
		{"https://api.example.com", "https://api.example.com:8443", false},
		{"https://api.example.com:*", "https://api.example.com:8443", true},
		{"https://api.example.com:8443", "https://api.example.com:*", false},
		{"*://api.example.com", "https://api.example.com", true},
		{"*://api.example.com", "http://api.example.com", true},
		{"*://api.example.com", "http://api.example.com:443", false},
		{"https://api.example.com", "*://api.example.com", false},
		{"*://api.example.com:443", "*://api.example.com", false}, // q allows http on 80
		{"*://api.example.com", "*://api.example.com:443", false}, // q allows http on 443
		{"*://*:*", "https://anything.example:1", true},
		{"https://*.example.com", "https://a.example.com", true},
		{"https://*.example.com", "https://*.a.example.com", true},
		{"https://*.example.com", "https://*.example.com", true},
		{"https://*.example.com", "https://example.com", false},
		{"https://*.example.com", "https://*.xexample.com", false},
		{"https://*.example.com", "https://*", false},
		{"https://a.example.com", "https://*.example.com", false},
		{"https://*", "https://127.0.0.1", true},
		{"https://*.0.0.1.example", "https://127.0.0.1", false},
	}
	for _, tc := range cases {
		p, err := ParseHostPattern(tc.p)
		require.NoError(t, err, tc.p)
		q, err := ParseHostPattern(tc.q)
		require.NoError(t, err, tc.q)
		require.Equal(t, tc.want, p.Covers(q), "%s covers %s", tc.p, tc.q)
	}
}

// FuzzParseHostPattern checks that parsing never panics and that a parsed
// pattern's canonical form parses back to the same pattern.
func FuzzParseHostPattern(f *testing.F) {
	for _, s := range []string{
		"https://api.example.com", "http://*.example.org:8080", "*://*:*", "http://[::1]:9000",
		"http://[::ffff:1.2.3.4]", "http://127.0.0.1", "http://[[::1]", "http://[::1]:", "http://*.0.1",
		"https://EXAMPLE.com.:443", "http://a:b:c", "http://[fe80::1%25x]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseHostPattern(s)
		if err != nil {
			return
		}
		again, err := ParseHostPattern(p.String())
		require.NoError(t, err, "canonical form %q of %q does not parse", p.String(), s)
		require.Equal(t, p, again)
		require.True(t, p.Covers(p), "%v must cover itself", p)
		if p.Literal() {
			// A literal pattern's host is already in NormalizeHost form,
			// else it could never match a request.
			require.Equal(t, p.Host, NormalizeHost(p.Host))
		}
	})
}

// FuzzCovers checks that Covers is sound: whatever the narrower pattern
// allows, the wider one allows too.
func FuzzCovers(f *testing.F) {
	f.Add("https://*.example.com", "https://a.example.com:443")
	f.Add("*://api.example.com", "https://api.example.com")
	f.Add("*://*:*", "http://[::1]:1")
	f.Add("https://*.0.0.1.example", "https://127.0.0.1")
	f.Fuzz(func(t *testing.T, ps, qs string) {
		p, err := ParseHostPattern(ps)
		if err != nil {
			return
		}
		q, err := ParseHostPattern(qs)
		if err != nil || !p.Covers(q) {
			return
		}
		hosts := []string{"example.com", "127.0.0.1", "[::1]"}
		switch {
		case q.Host == "*":
		case strings.HasPrefix(q.Host, "*."):
			hosts = append(hosts, "a"+q.Host[1:], "a.b"+q.Host[1:])
		default:
			hosts = append(hosts, q.Host)
		}
		ports := []int{1, 80, 443, 8080, 65535}
		if q.Port > 0 {
			ports = append(ports, q.Port)
		}
		for _, scheme := range []string{"http", "https"} {
			for _, h := range hosts {
				for _, port := range ports {
					if q.Matches(scheme, h, port) {
						require.True(t, p.Matches(scheme, h, port),
							"%v covers %v but does not match %s://%s:%s", p, q, scheme, h, strconv.Itoa(port))
					}
				}
			}
		}
	})
}
