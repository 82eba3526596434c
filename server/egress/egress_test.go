package egress

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
)

// server is a loopback test server that counts the requests it served.
type server struct {
	*httptest.Server
	hits atomic.Int32
	port int
}

func setup(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	s.port = s.Listener.Addr().(*net.TCPAddr).Port
	return s
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

// policy parses the patterns; fmt verbs let tests splice in ports.
func policy(t *testing.T, patterns ...string) *Policy {
	t.Helper()
	p := &Policy{}
	for _, s := range patterns {
		hp, err := abi.ParseHostPattern(s)
		require.NoError(t, err, s)
		p.Allowed = append(p.Allowed, hp)
	}
	return p
}

func get(url string) abi.HTTPRequest { return abi.HTTPRequest{URL: url} }

// requireErrno checks the errno and that the message contains want.
func requireErrno(t *testing.T, err error, errno abi.Errno, want string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, errno, Errno(err), "error: %v", err)
	require.Contains(t, err.Error(), want)
}

func TestLiteralLoopbackGrant(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	resp, err := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port)).Do(t.Context(), get(s.URL+"/x"))
	require.NoError(t, err)
	require.Equal(t, 200, resp.Status)
	require.Equal(t, "ok", string(resp.Body))
}

func TestWildcardGrantCannotReachLoopback(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	for _, grant := range []string{"http://*:*", fmt.Sprintf("http://*:%d", s.port), "*://*:*"} {
		_, err := policy(t, grant).Do(t.Context(), get(s.URL))
		requireErrno(t, err, abi.ErrnoDenied, "denied: 127.0.0.1 is a loopback address; only a grant naming the host literally may reach it")
	}
	require.Zero(t, s.hits.Load())
}

func TestLocalhost(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	url := fmt.Sprintf("http://localhost:%d/", s.port)

	// localhost may resolve to ::1 first, where nothing listens; the dialer
	// then tries 127.0.0.1.
	resp, err := policy(t, fmt.Sprintf("http://localhost:%d", s.port)).Do(t.Context(), get(url))
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))

	// Trailing dot and upper case name the same host.
	resp, err = policy(t, fmt.Sprintf("http://localhost:%d", s.port)).Do(t.Context(), get(fmt.Sprintf("http://LocalHost.:%d/", s.port)))
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))

	for _, grant := range []string{"http://*:*", fmt.Sprintf("http://*:%d", s.port)} {
		_, err := policy(t, grant).Do(t.Context(), get(url))
		requireErrno(t, err, abi.ErrnoDenied, "denied: localhost resolves to loopback address")
		require.Contains(t, err.Error(), "only a grant naming the host literally may reach it")
	}
	// *.localhost names things below localhost, not localhost itself.
	_, err = policy(t, "http://*.localhost:*").Do(t.Context(), get(url))
	requireErrno(t, err, abi.ErrnoDenied, fmt.Sprintf("denied: http://localhost:%d is not in allowed_outbound_hosts", s.port))
	// A literal grant and a wildcard both matching: the literal one decides.
	_, err = policy(t, "http://*:*", fmt.Sprintf("http://localhost:%d", s.port)).Do(t.Context(), get(url))
	require.NoError(t, err)
}

func TestTrailingDotIPAndCase(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port))
	for _, u := range []string{
		fmt.Sprintf("HTTP://127.0.0.1:%d/", s.port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", s.port), // IPv4-mapped is the same host
		fmt.Sprintf("http://127.0.0.1:%d/#fragment", s.port),
	} {
		resp, err := p.Do(t.Context(), get(u))
		require.NoError(t, err, u)
		require.Equal(t, "ok", string(resp.Body))
	}
}

func TestDeniedPortAndScheme(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	_, err := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port+1)).Do(t.Context(), get(s.URL))
	requireErrno(t, err, abi.ErrnoDenied, fmt.Sprintf("denied: http://127.0.0.1:%d is not in allowed_outbound_hosts", s.port))

	_, err = policy(t, "http://127.0.0.1").Do(t.Context(), get(s.URL))
	requireErrno(t, err, abi.ErrnoDenied, "is not in allowed_outbound_hosts")

	_, err = policy(t, fmt.Sprintf("https://127.0.0.1:%d", s.port)).Do(t.Context(), get(s.URL))
	requireErrno(t, err, abi.ErrnoDenied, fmt.Sprintf("denied: http://127.0.0.1:%d is not in allowed_outbound_hosts", s.port))

	_, err = (*Policy)(nil).Do(t.Context(), get(s.URL))
	requireErrno(t, err, abi.ErrnoDenied, "is not in allowed_outbound_hosts")
	require.Zero(t, s.hits.Load())
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port), "*://*:*")
	host := fmt.Sprintf("127.0.0.1:%d", s.port)
	cases := []struct {
		req  abi.HTTPRequest
		want string
	}{
		{get("http://user:pw@" + host + "/"), "user info"},
		{get("http://user@" + host + "/"), "user info"},
		{get("ftp://" + host + "/"), "scheme must be http or https"},
		{get("/relative"), "scheme must be http or https"},
		{get("http:opaque"), "needs a host"},
		{get("http:///path"), "needs a host"},
		{get("http://:80/"), "host \"\" is empty"},
		{get("http://127.0.0.1:0/"), "port \"0\""},
		{get("http://127.0.0.1:65536/"), "port \"65536\""},
		{get("http://127.0.0.1:0080/"), "port \"0080\""},
		{get("http://ex ample.com/"), "invalid URL"},
		{get("http://bücher.example/"), "punycode"},
		{get("http://\u212Aelvin.example/"), "punycode"}, // Kelvin sign lower-cases to ASCII k
		{get("http://0x7f.1/"), "numeric label"},
		{get("http://2130706433/"), "numeric label"},
		{get("http://a..b/"), "empty or over-long label"},
		{get("http://[fe80::1%25eth0]/"), "IPv6 zone"},
		{get("http://%31%32%37.0.0.1/"), "invalid URL"},
		{abi.HTTPRequest{Method: "GE T", URL: s.URL}, "invalid method"},
		{abi.HTTPRequest{Method: "CONNECT", URL: s.URL}, "CONNECT"},
		{abi.HTTPRequest{URL: s.URL, Headers: map[string][]string{"X-A": {"a\r\nInjected: 1"}}}, "control characters"},
		{abi.HTTPRequest{URL: s.URL, Headers: map[string][]string{"X-A": {"a\nb"}}}, "control characters"},
		{abi.HTTPRequest{URL: s.URL, Headers: map[string][]string{"X-A": {"a\x00"}}}, "control characters"},
		{abi.HTTPRequest{URL: s.URL, Headers: map[string][]string{"X A": {"a"}}}, "invalid header name"},
		{abi.HTTPRequest{URL: s.URL, Headers: map[string][]string{"X-A\r\n": {"a"}}}, "invalid header name"},
		{abi.HTTPRequest{URL: s.URL, Headers: map[string][]string{"": {"a"}}}, "invalid header name"},
	}
	for _, tc := range cases {
		_, err := p.Do(t.Context(), tc.req)
		requireErrno(t, err, abi.ErrnoInvalidArgument, tc.want)
	}
	require.Zero(t, s.hits.Load())
}

func TestPostBodyAndHeaders(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, host, body, contentType string
		header                          http.Header
		contentLength                   int64
	}
	got := make(chan seen, 1)
	s := setup(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Host, string(b), r.Header.Get("Content-Type"), r.Header, r.ContentLength}
		w.Header().Add("X-Reply", "one")
		w.Header().Add("X-Reply", "two")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "missing")
	})
	p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port))
	resp, err := p.Do(t.Context(), abi.HTTPRequest{
		Method: "POST",
		URL:    s.URL + "/submit?q=1",
		Headers: map[string][]string{
			"content-type":      {"application/json"},
			"X-Multi":           {"a", "b"},
			"Host":              {"other.example"},
			"Connection":        {"Upgrade"},
			"Upgrade":           {"websocket"},
			"Transfer-Encoding": {"chunked"},
			"Content-Length":    {"1"},
			"Proxy-Connection":  {"keep-alive"},
		},
		Body: []byte(`{"a":1}`),
	})
	require.NoError(t, err, "a 404 is a response, not an error")
	require.Equal(t, http.StatusNotFound, resp.Status)
	require.Equal(t, "missing", string(resp.Body))
	require.Equal(t, []string{"one", "two"}, resp.Headers["X-Reply"])

	r := <-got
	require.Equal(t, "POST", r.method)
	require.Equal(t, `{"a":1}`, r.body)
	require.Equal(t, int64(7), r.contentLength)
	require.Equal(t, "application/json", r.contentType)
	require.Equal(t, []string{"a", "b"}, r.header["X-Multi"])
	require.Equal(t, fmt.Sprintf("127.0.0.1:%d", s.port), r.host, "the guest cannot override Host")
	require.Empty(t, r.header.Get("Upgrade"))
	require.Empty(t, r.header.Get("Proxy-Connection"))
	require.Empty(t, r.header.Get("Accept-Encoding"), "the transport must not ask for gzip on the guest's behalf")
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	target := setup(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})
	redirect := func(code int) *server {
		return setup(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/landed#frag", code)
		})
	}
	a, a307 := redirect(http.StatusFound), redirect(http.StatusTemporaryRedirect)
	grants := []string{
		fmt.Sprintf("http://127.0.0.1:%d", a.port),
		fmt.Sprintf("http://127.0.0.1:%d", a307.port),
	}

	t.Run("allowed target followed", func(t *testing.T) {
		t.Parallel()
		p := policy(t, append(grants, fmt.Sprintf("http://127.0.0.1:%d", target.port))...)
		resp, err := p.Do(t.Context(), get(a.URL))
		require.NoError(t, err)
		require.Equal(t, 200, resp.Status)
		require.Equal(t, "GET /landed ", string(resp.Body))
		// 307 keeps the method and resends the body.
		resp, err = p.Do(t.Context(), abi.HTTPRequest{Method: "POST", URL: a307.URL, Body: []byte("hi")})
		require.NoError(t, err)
		require.Equal(t, "POST /landed hi", string(resp.Body))
	})
	t.Run("target not allowed", func(t *testing.T) {
		t.Parallel()
		before := target.hits.Load()
		_, err := policy(t, grants...).Do(t.Context(), get(a.URL))
		requireErrno(t, err, abi.ErrnoDenied, fmt.Sprintf("denied: http://127.0.0.1:%d is not in allowed_outbound_hosts (redirected from http://127.0.0.1:%d)", target.port, a.port))
		require.Equal(t, before, target.hits.Load(), "the denied target must not be contacted")
	})
	t.Run("target allowed only by a wildcard", func(t *testing.T) {
		t.Parallel()
		// Literal-ness is decided per hop: the first hop's literal grant
		// does not carry over to the loopback target.
		before := target.hits.Load()
		_, err := policy(t, append(grants, "http://*:*")...).Do(t.Context(), get(a.URL))
		requireErrno(t, err, abi.ErrnoDenied, "denied: 127.0.0.1 is a loopback address")
		require.Equal(t, before, target.hits.Load())
	})
	t.Run("not followed when disabled", func(t *testing.T) {
		t.Parallel()
		p := policy(t, grants...)
		p.MaxRedirects = -1
		resp, err := p.Do(t.Context(), get(a.URL))
		require.NoError(t, err)
		require.Equal(t, http.StatusFound, resp.Status)
		require.Equal(t, []string{target.URL + "/landed#frag"}, resp.Headers["Location"])
	})
	t.Run("to an unusable URL", func(t *testing.T) {
		t.Parallel()
		s := setup(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "http://user:pw@"+strings.TrimPrefix(target.URL, "http://")+"/")
			w.WriteHeader(http.StatusFound)
		})
		p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port), fmt.Sprintf("http://127.0.0.1:%d", target.port))
		_, err := p.Do(t.Context(), get(s.URL))
		requireErrno(t, err, abi.ErrnoIO, "redirected to an unusable URL: invalid URL: user info")
	})
}

func TestRedirectLimit(t *testing.T) {
	t.Parallel()
	// /n redirects to /n-1; /0 answers.
	s := setup(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if n > 0 {
			http.Redirect(w, r, "/"+strconv.Itoa(n-1), http.StatusFound)
			return
		}
		io.WriteString(w, "done")
	})
	p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port))
	p.MaxRedirects = 3
	resp, err := p.Do(t.Context(), get(s.URL+"/3"))
	require.NoError(t, err)
	require.Equal(t, "done", string(resp.Body))

	before := s.hits.Load()
	_, err = p.Do(t.Context(), get(s.URL+"/4"))
	requireErrno(t, err, abi.ErrnoIO, "stopped after 3 redirects")
	require.Equal(t, int32(4), s.hits.Load()-before, "the first request and 3 redirects")

	// A loop ends at the default limit.
	loop := setup(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	})
	_, err = policy(t, fmt.Sprintf("http://127.0.0.1:%d", loop.port)).Do(t.Context(), get(loop.URL+"/loop"))
	requireErrno(t, err, abi.ErrnoIO, "stopped after 10 redirects")
	require.Equal(t, int32(DefaultMaxRedirects+1), loop.hits.Load())
}

func TestResponseTooLarge(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 1000)
	s := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			// No Content-Length: the limit must hold while reading.
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, big)
	})
	p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port))
	p.MaxResponseBytes = 999
	_, err := p.Do(t.Context(), get(s.URL+"/sized"))
	requireErrno(t, err, abi.ErrnoTooLarge, "response body of 1000 bytes exceeds 999 bytes")
	_, err = p.Do(t.Context(), get(s.URL+"/chunked"))
	requireErrno(t, err, abi.ErrnoTooLarge, "response body exceeds 999 bytes")

	p.MaxResponseBytes = 1000
	resp, err := p.Do(t.Context(), get(s.URL+"/chunked"))
	require.NoError(t, err)
	require.Len(t, resp.Body, 1000)
}

func TestRequestTooLarge(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port))
	p.MaxRequestBytes = 10
	_, err := p.Do(t.Context(), abi.HTTPRequest{Method: "POST", URL: s.URL, Body: make([]byte, 11)})
	requireErrno(t, err, abi.ErrnoTooLarge, "request body of 11 bytes exceeds 10 bytes")
	require.Zero(t, s.hits.Load())
	_, err = p.Do(t.Context(), abi.HTTPRequest{Method: "POST", URL: s.URL, Body: make([]byte, 10)})
	require.NoError(t, err)
}

func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port))
	_, err := p.Do(t.Context(), abi.HTTPRequest{Method: "PUT", URL: s.URL, Body: make([]byte, DefaultMaxBodyBytes+1)})
	requireErrno(t, err, abi.ErrnoTooLarge, "exceeds 10485760 bytes")
	d := p.withDefaults()
	require.Equal(t, Policy{Allowed: p.Allowed, MaxRequestBytes: 10 << 20, MaxResponseBytes: 10 << 20,
		Timeout: 30 * time.Second, MaxRedirects: 10}, d)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	s := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	p := policy(t, fmt.Sprintf("http://127.0.0.1:%d", s.port))
	p.Timeout = 100 * time.Millisecond
	_, err := p.Do(t.Context(), get(s.URL+"/slow"))
	requireErrno(t, err, abi.ErrnoTimeout, fmt.Sprintf("http://127.0.0.1:%d: timed out after 100ms", s.port))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	_, err = p.Do(t.Context(), get(s.URL+"/slow-body"))
	requireErrno(t, err, abi.ErrnoTimeout, "timed out after 100ms")

	// The caller's earlier deadline applies too.
	p.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = p.Do(ctx, get(s.URL+"/slow"))
	requireErrno(t, err, abi.ErrnoTimeout, "timed out at the invocation's deadline")
}

func TestConnectionRefusedIsIO(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	_, err = policy(t, fmt.Sprintf("http://127.0.0.1:%d", port)).Do(t.Context(), get(fmt.Sprintf("http://127.0.0.1:%d/secret-path?token=x", port)))
	requireErrno(t, err, abi.ErrnoIO, "refused")
	require.NotContains(t, err.Error(), "token", "messages name the origin, not the full URL")
}

func TestIPv6Loopback(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(ok))
	s.Listener.Close()
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	port := l.Addr().(*net.TCPAddr).Port
	url := fmt.Sprintf("http://[::1]:%d/", port)

	resp, err := policy(t, fmt.Sprintf("http://[::1]:%d", port)).Do(t.Context(), get(url))
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))
	resp, err = policy(t, fmt.Sprintf("http://[0:0::1]:%d", port)).Do(t.Context(), get(fmt.Sprintf("http://[0:0:0:0:0:0:0:1]:%d/", port)))
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))

	_, err = policy(t, "http://*:*").Do(t.Context(), get(url))
	requireErrno(t, err, abi.ErrnoDenied, "denied: [::1] is a loopback address")
	_, err = policy(t, fmt.Sprintf("http://127.0.0.1:%d", port)).Do(t.Context(), get(url))
	requireErrno(t, err, abi.ErrnoDenied, "is not in allowed_outbound_hosts")
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := httptest.NewUnstartedServer(http.HandlerFunc(ok))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes below are expected
	s.StartTLS()
	t.Cleanup(s.Close)
	port := s.Listener.Addr().(*net.TCPAddr).Port
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())

	p := policy(t, fmt.Sprintf("https://127.0.0.1:%d", port), fmt.Sprintf("https://localhost:%d", port))
	p.RootCAs = roots
	resp, err := p.Do(t.Context(), get(s.URL))
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))

	// The test certificate names 127.0.0.1, ::1 and example.com but not
	// localhost. The connection goes to 127.0.0.1 either way; it must fail
	// because the certificate is checked against the name in the URL, not
	// against the address dialed.
	_, err = p.Do(t.Context(), get(fmt.Sprintf("https://localhost:%d/", port)))
	requireErrno(t, err, abi.ErrnoIO, "certificate is valid for")

	// Without the test root the server is not trusted.
	p.RootCAs = nil
	_, err = p.Do(t.Context(), get(s.URL))
	requireErrno(t, err, abi.ErrnoIO, "certificate")

	// An https grant does not allow http to the same port, nor the reverse.
	_, err = p.Do(t.Context(), get(fmt.Sprintf("http://127.0.0.1:%d/", port)))
	requireErrno(t, err, abi.ErrnoDenied, "is not in allowed_outbound_hosts")
}

func TestDialerRechecksAllowList(t *testing.T) {
	t.Parallel()
	s := setup(t, ok)
	p := policy(t, fmt.Sprintf("https://127.0.0.1:%d", s.port), "http://*:*").withDefaults()
	deadline := time.Now().Add(time.Minute)
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	// The https grant is literal, but a plain http dial only matches the
	// wildcard: the scheme decides which grant counts.
	_, err := p.dial(t.Context(), deadline, "http", addr)
	requireErrno(t, err, abi.ErrnoDenied, "loopback")
	_, err = p.dial(t.Context(), deadline, "http", "127.0.0.1:notaport")
	requireErrno(t, err, abi.ErrnoInvalidArgument, "port")
	_, err = p.dial(t.Context(), deadline, "http", "no-port")
	requireErrno(t, err, abi.ErrnoInvalidArgument, "invalid address")

	tr := p.transport(deadline)
	require.Nil(t, tr.Proxy, "environment proxies must never be used")
	require.True(t, tr.DisableKeepAlives)
}

func TestCheckAddrs(t *testing.T) {
	t.Parallel()
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	name := target{scheme: "https", host: "api.example.com", port: 443}
	require.NoError(t, checkAddrs(name, addrs("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")))
	// One private address among public ones is enough to refuse.
	err := checkAddrs(name, addrs("93.184.215.14", "10.1.2.3"))
	requireErrno(t, err, abi.ErrnoDenied, "denied: api.example.com resolves to private address 10.1.2.3")
	err = checkAddrs(name, addrs("169.254.169.254"))
	requireErrno(t, err, abi.ErrnoDenied, "link-local address 169.254.169.254")
	name.literal = true
	require.NoError(t, checkAddrs(name, addrs("10.1.2.3", "127.0.0.1")))
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		// Public.
		"1.1.1.1":               "",
		"8.8.8.8":               "",
		"93.184.215.14":         "",
		"100.63.255.255":        "",
		"100.128.0.0":           "",
		"172.15.255.255":        "",
		"172.32.0.0":            "",
		"192.167.255.255":       "",
		"192.169.0.0":           "",
		"223.255.255.255":       "",
		"2606:4700:4700::1111":  "",
		"2001:4860:4860::8888":  "",
		"::ffff:8.8.8.8":        "",
		"64:ff9b::808:808":      "", // NAT64 of 8.8.8.8
		"2a00:1450:4001:81b::e": "",
		// Loopback.
		"127.0.0.1":        "loopback",
		"127.255.255.254":  "loopback",
		"::1":              "loopback",
		"::ffff:127.0.0.1": "loopback",
		"64:ff9b::7f00:1":  "loopback",
		// Private.
		"10.0.0.1":            "private",
		"172.16.0.1":          "private",
		"172.31.255.255":      "private",
		"192.168.1.1":         "private",
		"fc00::1":             "private",
		"fd12:3456:789a::1":   "private",
		"::ffff:10.0.0.1":     "private",
		"::ffff:192.168.0.1":  "private",
		"fec0::1":             "private",
		"64:ff9b:1::a00:1":    "private",
		"64:ff9b::c0a8:101":   "private", // NAT64 of 192.168.1.1
		"100.64.0.1":          "shared (CGNAT)",
		"100.127.255.255":     "shared (CGNAT)",
		"169.254.169.254":     "link-local",
		"fe80::1":             "link-local",
		"fe80::1%eth0":        "link-local",
		"::ffff:169.254.1.1":  "link-local",
		"0.0.0.0":             "unspecified",
		"0.1.2.3":             "unspecified",
		"::":                  "unspecified",
		"::ffff:0.0.0.0":      "unspecified",
		"224.0.0.1":           "multicast",
		"239.255.255.250":     "multicast",
		"ff02::1":             "multicast",
		"255.255.255.255":     "broadcast",
		"240.0.0.1":           "reserved",
		"192.0.0.8":           "reserved",
		"198.18.0.1":          "reserved",
		"192.0.2.1":           "documentation",
		"198.51.100.1":        "documentation",
		"203.0.113.1":         "documentation",
		"2001:db8::1":         "documentation",
		"::127.0.0.1":         "reserved", // IPv4-compatible
		"2002:7f00:1::":       "reserved", // 6to4
		"2001:0:4136:e378::1": "reserved", // Teredo
		"100::1":              "reserved",
		"4000::1":             "reserved", // outside 2000::/3
	} {
		require.Equal(t, want, classify(netip.MustParseAddr(addr)), addr)
	}
	require.Equal(t, "invalid", classify(netip.Addr{}))
}

func TestErrno(t *testing.T) {
	t.Parallel()
	require.Equal(t, abi.ErrnoSuccess, Errno(nil))
	require.Equal(t, abi.ErrnoDenied, Errno(fmt.Errorf("wrapped: %w", errorf(abi.ErrnoDenied, nil, "denied"))))
	require.Equal(t, abi.ErrnoTimeout, Errno(context.DeadlineExceeded))
	require.Equal(t, abi.ErrnoIO, Errno(errors.New("anything else")))
	var e *Error
	require.ErrorAs(t, errorf(abi.ErrnoTooLarge, io.EOF, "x"), &e)
	require.Equal(t, abi.ErrnoTooLarge, e.Errno())
	require.ErrorIs(t, e, io.EOF)
}

// FuzzMatch checks, for arbitrary grants and URLs, that checking never
// panics and that an allowed URL's normalized origin really satisfies the
// grant.
func FuzzMatch(f *testing.F) {
	f.Add("http://*:*", "http://127.0.0.1:8080/x")
	f.Add("https://*.example.com", "https://a.example.com./")
	f.Add("https://*.example.com", "https://example.com/")
	f.Add("http://[::1]:80", "http://[0::1]/")
	f.Add("http://127.0.0.1", "http://[::ffff:127.0.0.1]/")
	f.Add("*://localhost:*", "HTTP://LOCALHOST:1/#x")
	f.Add("http://*", "http://user@evil.example@good.example/")
	f.Add("http://*", "http://\u212Aexample.com/")
	f.Add("http://*.0.1", "http://127.0.0.1/") // parsed, and matched IPs, before abi rejected numeric TLDs
	f.Fuzz(func(t *testing.T, pattern, rawURL string) {
		pat, err := abi.ParseHostPattern(pattern)
		if err != nil {
			return
		}
		p := &Policy{Allowed: []abi.HostPattern{pat}}
		u, tgt, err := p.checkURL(rawURL)
		if err != nil {
			e := &Error{}
			require.ErrorAs(t, err, &e)
			require.Contains(t, []abi.Errno{abi.ErrnoInvalidArgument, abi.ErrnoDenied}, e.Errno())
			return
		}
		// The origin is what net/url reads, normalized.
		require.Contains(t, []string{"http", "https"}, tgt.scheme)
		require.Nil(t, u.User)
		require.Empty(t, u.Fragment)
		require.Equal(t, abi.NormalizeHost(u.Hostname()), tgt.host)
		require.Equal(t, tgt.host, abi.NormalizeHost(tgt.host), "normalization is idempotent")
		require.True(t, tgt.port >= 1 && tgt.port <= 65535)
		if u.Port() != "" {
			require.Equal(t, u.Port(), strconv.Itoa(tgt.port))
		} else {
			require.Equal(t, abi.DefaultPort(tgt.scheme), tgt.port)
		}
		// Do sends u.String(); it must read back as the same origin.
		reparsed, err := url.Parse(u.String())
		require.NoError(t, err)
		require.Equal(t, u.Host, reparsed.Host)
		// The dialer's re-check of the address the Transport derives from
		// the URL reaches the same decision.
		port := u.Port()
		if port == "" {
			port = strconv.Itoa(abi.DefaultPort(u.Scheme))
		}
		h, pt, err := splitAddr(net.JoinHostPort(u.Hostname(), port))
		require.NoError(t, err)
		again, err := p.check(u.Scheme, h, pt)
		require.NoError(t, err)
		require.Equal(t, tgt, again)

		// The grant is satisfied by the normalized host.
		require.True(t, pat.Scheme == "*" || pat.Scheme == tgt.scheme)
		switch {
		case pat.Host == "*":
			require.False(t, tgt.literal)
		case strings.HasPrefix(pat.Host, "*."):
			require.True(t, strings.HasSuffix(tgt.host, pat.Host[1:]))
			require.Greater(t, len(tgt.host), len(pat.Host)-1)
			_, isIP := tgt.ip()
			require.False(t, isIP, "a wildcard name matched IP address %s", tgt.host)
			require.False(t, tgt.literal)
		default:
			require.Equal(t, pat.Host, tgt.host)
			require.True(t, tgt.literal)
		}
		switch pat.Port {
		case abi.PortAny:
		case abi.PortDefault:
			require.Equal(t, abi.DefaultPort(tgt.scheme), tgt.port)
		default:
			require.Equal(t, pat.Port, tgt.port)
		}
		// Hosts contain nothing a later parser could split differently.
		require.False(t, strings.ContainsAny(strings.Trim(tgt.host, "[]"), "/@?#%[] \\"), tgt.host)
	})
}
