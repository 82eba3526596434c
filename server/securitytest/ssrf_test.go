package securitytest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/egress"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// attackerZone is what the test's DNS server answers: names an attacker
// controls that point at the server's own network (DNS-based SSRF, the
// class of CVE-2024-27564 and of every "resolves to 169.254.169.254"
// report). No /etc/hosts entry is involved: the names go to a real DNS
// server on a loopback UDP port, through Go's own resolver.
var attackerZone = map[string][]string{
	"loopback.attacker.test.": {"127.0.0.1"},
	"private.attacker.test.":  {"10.0.0.7"},
	"mapped.attacker.test.":   {"::ffff:127.0.0.1"},
	"metadata.attacker.test.": {"169.254.169.254"},
	"mixed.attacker.test.":    {"93.184.215.14", "192.168.1.1"},
	"ula.attacker.test.":      {"fd00::1"},
	// A resolver that reads numeric spellings the way inet_aton does
	// would answer these; Go's does not, so the attacker's DNS server
	// answers them instead.
	"0x7f000001.": {"127.0.0.1"},
}

// serveDNS answers A and AAAA queries from attackerZone on a loopback UDP
// port until the test ends, and returns its address.
func serveDNS(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess})
			b.EnableCompression()
			addrs, known := attackerZone[strings.ToLower(q.Name.String())]
			if !known {
				b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError})
			}
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			for _, a := range addrs {
				ip := netip.MustParseAddr(a)
				rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
				switch {
				case q.Type == dnsmessage.TypeA && ip.Is4():
					b.AResource(rh, dnsmessage.AResource{A: ip.As4()})
				case q.Type == dnsmessage.TypeAAAA && ip.Is6():
					b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: ip.As16()})
				}
			}
			if msg, err := b.Finish(); err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// TestSSRFThroughTheHTTPCapability: a module granted a wildcard host
// ("http://*:*") tries to reach the server's own network. Class: SSRF
// (CWE-918), in the shapes of recent automation-server CVEs: names that
// resolve to loopback, private, link-local (cloud metadata) and
// IPv4-mapped IPv6 addresses, a name with one public and one private
// address, redirects to such names, and numeric spellings of 127.0.0.1
// (decimal, octal, hex, short forms) that some resolvers accept. Each is
// refused before a connection is made. egress's own tests cover the
// address classes one by one (TestClassify, TestCheckAddrs), literal
// loopback (TestLocalhost, TestIPv6Loopback), redirects (TestRedirects)
// and parsing (TestInvalidRequests); this test drives the same Policy the
// sandbox uses through a real resolver.
func TestSSRFThroughTheHTTPCapability(t *testing.T) {
	// Not parallel: it points Go's resolver at the attacker's DNS server
	// for its duration (no parallel test resolves names meanwhile).
	dnsAddr := serveDNS(t)
	saved := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dnsAddr)
	}}
	t.Cleanup(func() { net.DefaultResolver = saved })
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "loopback.attacker.test")
	require.NoError(t, err, "the test's resolver answers")
	require.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.1")}, addrs)

	var hits atomic.Int32
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("internal admin page"))
	}))
	t.Cleanup(inner.Close)
	port := inner.Listener.Addr().(*net.TCPAddr).Port
	// An allowed origin (granted literally, as an admin would grant one
	// local service) that redirects wherever it is told.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	t.Cleanup(redirector.Close)

	wildcard, err := abi.ParseHostPattern("http://*:*")
	require.NoError(t, err)
	literal, err := abi.ParseHostPattern("http://" + redirector.Listener.Addr().String())
	require.NoError(t, err)
	policy := &egress.Policy{Allowed: []abi.HostPattern{wildcard, literal}}

	for _, name := range []string{"loopback", "private", "mapped", "metadata", "mixed", "ula"} {
		url := fmt.Sprintf("http://%s.attacker.test:%d/", name, port)
		_, err := policy.Do(context.Background(), abi.HTTPRequest{URL: url})
		require.Error(t, err, url)
		require.Equal(t, abi.ErrnoDenied, egress.Errno(err), "%s: %v", url, err)
		require.Contains(t, err.Error(), "resolves to", url)

		// The same name reached through a redirect from an allowed origin.
		_, err = policy.Do(context.Background(), abi.HTTPRequest{URL: redirector.URL + "/?to=" + url})
		require.Error(t, err, "redirect to "+url)
		require.Equal(t, abi.ErrnoDenied, egress.Errno(err), "redirect to %s: %v", url, err)
	}
	for _, host := range []string{"2130706433", "0177.0.0.1", "0x7f000001", "0x7f.0.0.1", "127.1", "017700000001", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]", "127.0.0.1", "0.0.0.0", "localhost"} {
		url := fmt.Sprintf("http://%s:%d/", host, port)
		_, err := policy.Do(context.Background(), abi.HTTPRequest{URL: url})
		require.Error(t, err, url)
		errno := egress.Errno(err)
		require.True(t, errno == abi.ErrnoDenied || errno == abi.ErrnoInvalidArgument, "%s: %v", url, err)
	}
	require.Zero(t, hits.Load(), "no request reached the internal server")
}

// TestHTTPCapabilityDoesNotInflateResponses: a server answers with a gzip
// bomb. The capability hands the guest the bytes sent (DisableCompression)
// within MaxResponseBytes, and never inflates them (CWE-409).
func TestHTTPCapabilityDoesNotInflateResponses(t *testing.T) {
	t.Parallel()
	bomb := gzipBomb(t, 256<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/json")
		w.Write(bomb)
	}))
	t.Cleanup(srv.Close)
	literal, err := abi.ParseHostPattern(srv.URL)
	require.NoError(t, err)
	policy := &egress.Policy{Allowed: []abi.HostPattern{literal}, MaxResponseBytes: 1 << 20}
	res, err := policy.Do(context.Background(), abi.HTTPRequest{URL: srv.URL})
	require.NoError(t, err)
	require.Equal(t, bomb, res.Body, "the compressed bytes, as sent")

	policy.MaxResponseBytes = int64(len(bomb) / 2)
	_, err = policy.Do(context.Background(), abi.HTTPRequest{URL: srv.URL})
	require.Equal(t, abi.ErrnoTooLarge, egress.Errno(err))
}
