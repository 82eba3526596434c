// Package egress sends the outbound HTTP requests of guests (the http_send
// host function) and enforces what an admin granted: the allow list of
// scheme://host:port patterns, the ban on private addresses for wildcard
// grants, redirects, size limits and deadlines (ABI.md, http_send and §6).
//
// The checks are made where they cannot be bypassed. The allow list is
// checked on the URL before anything is sent, on every redirect hop, and
// again by the dialer for the exact host:port the transport connects to. The
// dialer resolves names itself, checks every address, and connects to the
// checked address, so DNS cannot change between the check and the connect.
//
// Every Do call builds its own http.Transport with keep-alives off and closes
// it before returning: no connection, TLS session or proxy setting is shared
// between invocations, and nothing outlives the call. Guests that make many
// requests pay a handshake each; isolation is worth more here than reuse.
//
// The guest may not set Host or the headers that belong to the connection
// (Connection, Transfer-Encoding, Upgrade, ...): they are dropped silently,
// as fetch in a browser drops its forbidden headers. Nothing is added on the
// guest's behalf either (no Accept-Encoding: the guest gets the bytes the
// server sent).
package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/millrace/millrace/abi"
)

// Defaults for the zero fields of a Policy (ABI.md, http_send).
const (
	DefaultMaxBodyBytes = 10 << 20
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRedirects = 10
)

// maxResponseHeaderBytes bounds the response headers, which are returned to
// the guest along with the body.
const maxResponseHeaderBytes = 1 << 20

// Policy is what one module invocation may reach. The zero Policy denies
// every request; fields left at zero take the defaults above.
type Policy struct {
	// Allowed are the granted allowed_outbound_hosts patterns. A request
	// goes out only if one matches; it may reach a loopback, private or
	// other non-public address only if a literal pattern (no wildcard)
	// matches.
	Allowed []abi.HostPattern
	// MaxRequestBytes bounds the request body (default 10 MiB).
	MaxRequestBytes int64
	// MaxResponseBytes bounds the response body (default 10 MiB).
	MaxResponseBytes int64
	// Timeout bounds the whole call, redirects and body included (default
	// 30 s). The deadline of the context passed to Do applies too.
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed (default 10); a
	// negative value follows none and returns the 3xx response as is.
	MaxRedirects int
	// RootCAs verifies servers' certificates; nil means the system roots.
	RootCAs *x509.CertPool
}

// withDefaults returns a copy of p with zero fields set to their defaults.
func (p *Policy) withDefaults() Policy {
	var q Policy
	if p != nil {
		q = *p
	}
	if q.MaxRequestBytes <= 0 {
		q.MaxRequestBytes = DefaultMaxBodyBytes
	}
	if q.MaxResponseBytes <= 0 {
		q.MaxResponseBytes = DefaultMaxBodyBytes
	}
	if q.Timeout <= 0 {
		q.Timeout = DefaultTimeout
	}
	if q.MaxRedirects == 0 {
		q.MaxRedirects = DefaultMaxRedirects
	}
	return q
}

// Do sends one request and returns the response, enforcing the policy.
// An HTTP error status is a response, not an error. Errors carry a message
// for the invocation's log; Errno maps them to what the guest sees.
func (p *Policy) Do(ctx context.Context, req abi.HTTPRequest) (abi.HTTPResponse, error) {
	pol := p.withDefaults()
	u, first, err := pol.checkURL(req.URL)
	if err != nil {
		return abi.HTTPResponse{}, err
	}
	method, err := checkMethod(req.Method)
	if err != nil {
		return abi.HTTPResponse{}, err
	}
	header, err := requestHeaders(req.Headers)
	if err != nil {
		return abi.HTTPResponse{}, err
	}
	if int64(len(req.Body)) > pol.MaxRequestBytes {
		return abi.HTTPResponse{}, errorf(abi.ErrnoTooLarge, nil, "request body of %d bytes exceeds %d bytes", len(req.Body), pol.MaxRequestBytes)
	}

	// The parent's deadline wins when it is earlier; messages say which one
	// expired.
	parent, hasParent := ctx.Deadline()
	ownDeadline := !hasParent || parent.After(time.Now().Add(pol.Timeout))
	ctx, cancel := context.WithTimeout(ctx, pol.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	tr := pol.transport(deadline)
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: pol.checkRedirect,
	}
	// A bytes.Reader lets the client resend the body on 307 and 308.
	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(req.Body))
	if err != nil {
		return abi.HTTPResponse{}, errorf(abi.ErrnoInvalidArgument, err, "invalid request: %v", err)
	}
	hreq.Header = header

	resp, err := client.Do(hreq)
	if err != nil {
		return abi.HTTPResponse{}, pol.failure(ctx, err, first.String(), ownDeadline)
	}
	defer resp.Body.Close()
	origin := originOf(resp.Request.URL)
	if resp.ContentLength > pol.MaxResponseBytes {
		return abi.HTTPResponse{}, errorf(abi.ErrnoTooLarge, nil, "%s: response body of %d bytes exceeds %d bytes", origin, resp.ContentLength, pol.MaxResponseBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, pol.MaxResponseBytes+1))
	if err != nil {
		return abi.HTTPResponse{}, pol.failure(ctx, err, origin, ownDeadline)
	}
	if int64(len(body)) > pol.MaxResponseBytes {
		return abi.HTTPResponse{}, errorf(abi.ErrnoTooLarge, nil, "%s: response body exceeds %d bytes", origin, pol.MaxResponseBytes)
	}
	return abi.HTTPResponse{Status: resp.StatusCode, Headers: resp.Header, Body: body}, nil
}

// checkRedirect vets every redirect hop as if the guest had asked for it:
// allow list first, then (in the dialer) the address rules for the hop's own
// host. A hop that fails ends the call with an error (denied for a host that
// is not granted, as ABI.md says) rather than returning the 3xx: the guest
// should not have to tell a followed redirect from a refused one.
func (p *Policy) checkRedirect(req *http.Request, via []*http.Request) error {
	if p.MaxRedirects < 0 {
		return http.ErrUseLastResponse
	}
	from := originOf(via[len(via)-1].URL)
	if len(via) > p.MaxRedirects {
		return errorf(abi.ErrnoIO, nil, "%s: stopped after %d redirects", from, p.MaxRedirects)
	}
	_, _, err := p.checkURL(req.URL.String())
	var e *Error
	if errors.As(err, &e) {
		if e.errno == abi.ErrnoInvalidArgument {
			// The server sent the bad URL, not the guest.
			return errorf(abi.ErrnoIO, e, "%s redirected to an unusable URL: %s", from, e.msg)
		}
		return errorf(e.errno, e, "%s (redirected from %s)", e.msg, from)
	}
	req.URL.Fragment, req.URL.RawFragment = "", ""
	return err
}

// failure turns an error of the client or of a body read into an *Error.
func (p *Policy) failure(ctx context.Context, err error, origin string, ownDeadline bool) error {
	var e *Error
	if errors.As(err, &e) {
		return e // from the dialer or checkRedirect; it says what happened
	}
	if ue, ok := err.(*url.Error); ok {
		// Its message repeats the full URL; name only the origin.
		if u, perr := url.Parse(ue.URL); perr == nil {
			origin = originOf(u)
		}
		err = ue.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err) {
		if ownDeadline {
			return errorf(abi.ErrnoTimeout, context.DeadlineExceeded, "%s: timed out after %s", origin, p.Timeout)
		}
		return errorf(abi.ErrnoTimeout, context.DeadlineExceeded, "%s: timed out at the invocation's deadline", origin)
	}
	if errors.Is(err, context.Canceled) {
		return errorf(abi.ErrnoIO, err, "%s: canceled", origin)
	}
	return errorf(abi.ErrnoIO, err, "%s: %v", origin, err)
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// originOf formats a URL as scheme://host:port for messages.
func originOf(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = strconv.Itoa(abi.DefaultPort(u.Scheme))
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)
}

// transport builds the Transport of one Do call. deadline bounds its dials,
// which net/http detaches from the request's context.
func (p *Policy) transport(deadline time.Time) *http.Transport {
	return &http.Transport{
		Proxy: nil, // never the environment's proxy: it would see, and could redirect, every request
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return p.dial(ctx, deadline, "http", addr)
		},
		// A TLS dialer of our own is the only way the dialer learns the
		// scheme, which decides which grant matched.
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return p.dial(ctx, deadline, "https", addr)
		},
		DisableKeepAlives:      true,
		DisableCompression:     true, // the guest gets the bytes the server sent
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
}

// dial connects to addr (host:port as the Transport derives it from the
// request URL) for a request of the given scheme. It re-checks the allow
// list, resolves the host, refuses non-public addresses unless a literal
// grant matched, and connects to the checked addresses themselves.
func (p *Policy) dial(ctx context.Context, deadline time.Time, scheme, addr string) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	hostname, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	t, err := p.check(scheme, hostname, port)
	if err != nil {
		return nil, err
	}
	addrs, err := resolve(ctx, t)
	if err != nil {
		return nil, err
	}
	if err := checkAddrs(t, addrs); err != nil {
		return nil, err
	}
	var d net.Dialer
	var conn net.Conn
	var errs []error
	for i, a := range addrs {
		conn, err = dialOne(ctx, &d, netip.AddrPortFrom(a, uint16(t.port)), len(addrs)-i)
		if err == nil {
			break
		}
		errs = append(errs, err)
	}
	if conn == nil {
		return nil, errors.Join(errs...)
	}
	if scheme != "https" {
		return conn, nil
	}
	serverName := t.host
	if ip, ok := t.ip(); ok {
		serverName = ip.String()
	}
	tc := tls.Client(conn, &tls.Config{
		// The name the guest asked for, not the address we dialed, is what
		// the certificate must prove.
		ServerName: serverName,
		RootCAs:    p.RootCAs,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// dialOne connects to one address. With more addresses left to try it gets
// only its share of the remaining time (at least 2 s, as net.Dialer does),
// so that one unreachable address cannot use up the whole deadline.
func dialOne(ctx context.Context, d *net.Dialer, ap netip.AddrPort, left int) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok && left > 1 {
		remaining := time.Until(dl)
		share := max(remaining/time.Duration(left), min(2*time.Second, remaining))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}
	return d.DialContext(ctx, "tcp", ap.String())
}

// resolve returns the addresses of a checked target: the literal itself for
// an IP host, else what the resolver says for the normalized name, the one
// the grant matched. (Go's resolver skips /etc/hosts for "localhost.", so
// the spelling with a trailing dot would not even reach the same host.)
func resolve(ctx context.Context, t target) ([]netip.Addr, error) {
	if ip, ok := t.ip(); ok {
		return []netip.Addr{ip}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", t.host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("lookup %s: no addresses", t.host)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}

// checkAddrs refuses the target if any of its addresses is not public and no
// literal grant matched. All of them are checked, not only the one dialed:
// a name that resolves to public and private addresses is suspect.
func checkAddrs(t target, addrs []netip.Addr) error {
	if t.literal {
		return nil
	}
	for _, a := range addrs {
		kind := classify(a)
		if kind == "" {
			continue
		}
		if ip, ok := t.ip(); ok && ip == a {
			return errorf(abi.ErrnoDenied, nil, "denied: %s is a %s address; only a grant naming the host literally may reach it", t.host, kind)
		}
		return errorf(abi.ErrnoDenied, nil, "denied: %s resolves to %s address %s; only a grant naming the host literally may reach it", t.host, kind, a)
	}
	return nil
}

// Error is an error of Do: a message for the invocation's log and the errno
// the guest gets.
type Error struct {
	errno abi.Errno
	msg   string
	err   error
}

func errorf(errno abi.Errno, cause error, format string, args ...any) *Error {
	return &Error{errno: errno, msg: fmt.Sprintf(format, args...), err: cause}
}

// Error returns the message.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the underlying cause, if any, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.err }

// Errno returns the errno the guest sees for this error.
func (e *Error) Errno() abi.Errno { return e.errno }

// Errno maps an error returned by Do to the ABI errno: nil is success, an
// *Error its own errno, a deadline timeout and anything else io.
func Errno(err error) abi.Errno {
	var e *Error
	switch {
	case err == nil:
		return abi.ErrnoSuccess
	case errors.As(err, &e):
		return e.errno
	case errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err):
		return abi.ErrnoTimeout
	}
	return abi.ErrnoIO
}
