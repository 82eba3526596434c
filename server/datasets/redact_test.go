package datasets

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		// E-mail addresses.
		{"write to john.doe+news@mail.example.co.uk.", "write to [email]."},
		{"<ann@example.org>, bob_99@ex-ample.com", "<[email]>, [email]"},
		{"mailto:x@y.io?subject=hi", "mailto:[email]?subject=hi"},
		{"user@localhost and @handle stay", "user@localhost and @handle stay"},
		{"name@domain.c1 is no address", "name@domain.c1 is no address"},
		// IPv4.
		{"from [193.120.211.219] by", "from [[ip]] by"},
		{"host 10.0.0.1: refused", "host [ip]: refused"},
		{"connect to 10.0.0.1:8080 now", "connect to [ip]:8080 now"},
		{"(210.97.77.167)", "([ip])"},
		{"at the end 8.8.8.8.", "at the end [ip]."},
		{"version 1.2.3.4.5 stays", "version 1.2.3.4.5 stays"},
		{"not an address: 256.1.1.1 or 1.2.3", "not an address: 256.1.1.1 or 1.2.3"},
		{"v1.2.3.4 stays", "v1.2.3.4 stays"},
		// IPv6.
		{"loopback ::1 and fe80::1", "loopback [ip] and [ip]"},
		{"2001:db8::8a2e:370:7334 is doc", "[ip] is doc"},
		{"mapped ::ffff:192.0.2.1 too", "mapped [ip] too"},
		{"[2001:db8::1]:443", "[[ip]]:443"},
		{"std::vector and Foo::Bar stay", "std::vector and Foo::Bar stay"},
		{"at 12:30:45 and MAC 00:1a:2b:3c:4d:5e", "at 12:30:45 and MAC 00:1a:2b:3c:4d:5e"},
		// Phone numbers.
		{"call +1 555 123 4567 now", "call [phone] now"},
		{"call (555) 123-4567 or 555.987.6543", "call [phone] or [phone]"},
		{"UK +44 20 7946 0958.", "UK [phone]."},
		{"toll free 1-800-555-0199", "toll free [phone]"},
		{"mobile +4915112345678", "mobile [phone]"},
		{"order 12345 555-1234", "order 12345 [phone]"},
		{"on 2002-08-22 and 22.08.2002", "on 2002-08-22 and 22.08.2002"},
		{"paid 1 000 000 dollars", "paid 1 000 000 dollars"},
		{"id 5551234567 stays", "id 5551234567 stays"},
		{"short 555-12 stays", "short 555-12 stays"},
		{"ISBN978-3-16-148410-0", "ISBN978-3-16-148410-0"},
		{"(c) 1997-2002, ISSN 1470-1448, 4852-4852", "(c) 1997-2002, ISSN 1470-1448, 4852-4852"},
		{"HorizSync 28.00-35.00", "HorizSync 28.00-35.00"},
		{"From jm 2002-09-02 14:58 --", "From jm 2002-09-02 14:58 --"},
		{"work: +1.949.833.2800 | +1 512-374-0500", "work: [phone] | [phone]"},
		{"Phone : +34 936 00 23 23", "Phone : [phone]"},
		{"Voice: (620) 235-4606 Fax: (620) 235-4545", "Voice: [phone] Fax: [phone]"},
		// Mixed: the address's digits are not a phone number.
		{"mail 555.123.4567@example.com from 192.168.1.20", "mail [email] from [ip]"},
	}
	for _, c := range cases {
		r, err := newRedactor(RedactKinds)
		require.NoError(t, err)
		require.Equal(t, c.want, r.apply(c.in), "input %q", c.in)
	}
}

func TestRedactOnlyWhatWasAsked(t *testing.T) {
	t.Parallel()
	r, err := newRedactor([]string{"IP", "ip"})
	require.NoError(t, err)
	require.Equal(t, []string{"ip"}, r.kinds)
	require.Equal(t, "a@b.com (555) 123-4567 [ip]", r.apply("a@b.com (555) 123-4567 10.1.1.1"))
	require.Equal(t, map[string]int{"ip": 1}, r.counts)

	_, err = newRedactor([]string{"names"})
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "query.redact", e.Field)
}
