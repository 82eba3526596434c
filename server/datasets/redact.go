package datasets

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What an import can redact, and the placeholder each becomes.
const (
	RedactEmail = "email" // → [email]
	RedactPhone = "phone" // → [phone]
	RedactIP    = "ip"    // IPv4 and IPv6 → [ip]
)

// RedactKinds lists the kinds of personal data an import can redact.
var RedactKinds = []string{RedactEmail, RedactPhone, RedactIP}

// redactor replaces personal data in texts and counts what it replaced.
// E-mail addresses go first (their domains may hold digits), then IP
// addresses, then phone numbers, so that an address's digits are never
// taken for a phone number. It is a heuristic: see README "Datasets".
type redactor struct {
	kinds  []string
	counts map[string]int
}

func newRedactor(kinds []string) (*redactor, error) {
	r := &redactor{counts: map[string]int{}}
	for _, k := range kinds {
		k = strings.TrimSpace(strings.ToLower(k))
		if k == "" {
			continue
		}
		if !slices.Contains(RedactKinds, k) {
			return nil, invalid("query.redact", "cannot redact %q; choose among %s", k, strings.Join(RedactKinds, ", "))
		}
		if !slices.Contains(r.kinds, k) {
			r.kinds = append(r.kinds, k)
		}
	}
	slices.Sort(r.kinds)
	return r, nil
}

func (r *redactor) apply(s string) string {
	if slices.Contains(r.kinds, RedactEmail) {
		var n int
		s, n = redactEmails(s)
		r.counts[RedactEmail] += n
	}
	if slices.Contains(r.kinds, RedactIP) {
		var n int
		s, n = redactIPs(s)
		r.counts[RedactIP] += n
	}
	if slices.Contains(r.kinds, RedactPhone) {
		var n int
		s, n = redactPhones(s)
		r.counts[RedactPhone] += n
	}
	return s
}

// emailPattern matches addr-spec local parts (dot-atoms) at a domain
// with at least one dot and an alphabetic top-level label, so that
// "user@host" and "@handles" stay.
var emailPattern = regexp.MustCompile(`[A-Za-z0-9!#$%&'*+/=?^_{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}`)

func isLocalByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+/=?^_{|}~-.", c) >= 0
}

func isDomainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// redactEmails replaces what emailPattern matches. The pattern runs only
// on the window around each @ (the run of local-part characters before
// it and of domain characters after it): the same matches, without
// running a regular expression over all of a long text.
func redactEmails(s string) (string, int) {
	var b strings.Builder
	n, last := 0, 0
	for i := 0; i < len(s); {
		at := strings.IndexByte(s[i:], '@')
		if at < 0 {
			break
		}
		at += i
		start := at
		for start > last && isLocalByte(s[start-1]) {
			start--
		}
		end := at + 1
		for end < len(s) && isDomainByte(s[end]) {
			end++
		}
		loc := emailPattern.FindStringIndex(s[start:end])
		if loc == nil {
			i = at + 1
			continue
		}
		b.WriteString(s[last : start+loc[0]])
		b.WriteString("[email]")
		last, i = start+loc[1], start+loc[1]
		n++
	}
	if n == 0 {
		return s, 0
	}
	b.WriteString(s[last:])
	return b.String(), n
}

func isIPByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.'
}

// isWordAt reports whether the character starting at s[i] is a letter,
// digit or underscore (false past the end).
func isWordAt(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func isWordBefore(s string, i int) bool {
	if i <= 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// redactIPs replaces IPv4 and IPv6 addresses that stand alone (not inside
// a word, a longer dotted number such as a version 1.2.3.4.5, or a name
// such as std::vector). An IPv4 address's port stays: 10.0.0.1:80 →
// [ip]:80. Addresses with leading zeros (010.0.0.1) are not addresses
// to net/netip, and are left.
func redactIPs(s string) (string, int) {
	var b strings.Builder
	n, last := 0, 0
	for i := 0; i < len(s); {
		if !isIPByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isIPByte(s[j]) {
			j++
		}
		start, end := i, j
		i = j
		for end > start && (s[end-1] == '.' || s[end-1] == ':') && !strings.HasSuffix(s[start:end], "::") {
			end--
		}
		for start < end && (s[start] == '.' || s[start] == ':') && !strings.HasPrefix(s[start:end], "::") {
			start++
		}
		if isWordBefore(s, start) || isWordAt(s, j) {
			continue
		}
		cand := s[start:end]
		addrEnd := end
		if a, err := netip.ParseAddr(cand); err != nil || !(a.Is4() || strings.Count(cand, ":") >= 2) || a.IsUnspecified() && cand == "::" {
			ap, err := netip.ParseAddrPort(cand)
			if err != nil || !ap.Addr().Is4() {
				continue
			}
			addrEnd = start + strings.LastIndexByte(cand, ':')
		}
		b.WriteString(s[last:start])
		b.WriteString("[ip]")
		last = addrEnd
		n++
	}
	if n == 0 {
		return s, 0
	}
	b.WriteString(s[last:])
	return b.String(), n
}

// nextPhoneCandidate finds, from pos, the next run that
// `\+?\(?\d[\d ().-]{5,22}\d` would match (leftmost, greedy): digits with
// the separators phone numbers are written with. phoneLike then decides.
// A hand-written scan, as a regular expression without a literal prefix
// tries every position of the text.
func nextPhoneCandidate(s string, pos int) (int, int, bool) {
	isDigit := func(i int) bool { return i < len(s) && s[i] >= '0' && s[i] <= '9' }
	for i := pos; i < len(s); i++ {
		j := i
		if s[j] == '+' {
			j++
		}
		if j < len(s) && s[j] == '(' {
			j++
		}
		if !isDigit(j) {
			continue
		}
		end := -1
		for k := j + 1; k < len(s) && k-(j+1) < 23 && strings.IndexByte("0123456789 ().-", s[k]) >= 0; k++ {
			if isDigit(k) && k-(j+1) >= 5 {
				end = k + 1
			}
		}
		if end > 0 {
			return i, end, true
		}
	}
	return 0, 0, false
}

// redactPhones replaces phone numbers: 7 to 15 digits, written with a
// leading +, an area code in parentheses, or groups split by single
// spaces, dots or hyphens (+1 555 123 4567, (555) 123-4567, 555.123.4567,
// +44 20 7946 0958, 1-800-555-0199, +4915112345678), with one kind of
// separator. Dates (2002-08-22, 22.08.2002), ranges (1997-2002,
// 28.00-35.00), thousands (1 000 000), bare digit runs (order numbers,
// timestamps) and numbers inside words or longer dotted numbers stay.
func redactPhones(s string) (string, int) {
	var b strings.Builder
	n, last, pos := 0, 0, 0
	for pos < len(s) {
		start, end, ok := nextPhoneCandidate(s, pos)
		if !ok {
			break
		}
		cand := s[start:end]
		if phoneLike(cand) && !isWordBefore(s, start) && !numberGoesOn(s, start, end) {
			b.WriteString(s[last:start])
			b.WriteString("[phone]")
			last, pos = end, end
			n++
			continue
		}
		// Try again from the next digit group: "order 12345 555-1234".
		next := strings.IndexAny(cand[1:], " .-()")
		if next < 0 {
			pos = end
		} else {
			pos = start + 1 + next + 1
		}
	}
	if n == 0 {
		return s, 0
	}
	b.WriteString(s[last:])
	return b.String(), n
}

// numberGoesOn reports whether the candidate is part of a longer token: a
// letter or digit right after it, or a dotted/hyphenated/slashed number
// around it (1.2345678.9, 2002-08-22/…).
func numberGoesOn(s string, start, end int) bool {
	if isWordAt(s, end) {
		return true
	}
	if end+1 < len(s) && strings.IndexByte(".-/", s[end]) >= 0 && s[end+1] >= '0' && s[end+1] <= '9' {
		return true
	}
	if start >= 2 && strings.IndexByte(".-/", s[start-1]) >= 0 && s[start-2] >= '0' && s[start-2] <= '9' {
		return true
	}
	return false
}

func phoneLike(c string) bool {
	plus := strings.HasPrefix(c, "+")
	c = strings.TrimPrefix(c, "+")
	var groups []string
	var seps []byte
	paren := false
	cur := strings.Builder{}
	prevSep := true // no separator may lead
	for i := 0; i < len(c); i++ {
		ch := c[i]
		switch {
		case ch >= '0' && ch <= '9':
			cur.WriteByte(ch)
			prevSep = false
		case ch == '(':
			if paren || cur.Len() > 0 {
				return false
			}
			paren = true
			prevSep = true
		case ch == ')':
			if !paren || cur.Len() == 0 {
				return false
			}
			groups = append(groups, cur.String())
			cur.Reset()
			seps = append(seps, ')')
			// ") " and ")-" are one separator.
			if i+1 < len(c) && (c[i+1] == ' ' || c[i+1] == '-' || c[i+1] == '.') {
				i++
			}
			prevSep = true
		default: // ' ', '.', '-'
			if prevSep {
				return false
			}
			groups = append(groups, cur.String())
			cur.Reset()
			seps = append(seps, ch)
			prevSep = true
		}
	}
	if cur.Len() == 0 {
		return false
	}
	groups = append(groups, cur.String())
	digits := 0
	for _, g := range groups {
		digits += len(g)
	}
	if digits < 7 || digits > 15 || len(groups) > 6 {
		return false
	}
	if len(groups) == 1 {
		return plus // a bare run of digits is an id, not a phone number
	}
	if len(groups[0]) > 4 {
		return false
	}
	for _, g := range groups[1:] {
		if len(g) < 2 || len(g) > 4 {
			return false
		}
	}
	// One kind of separator (ranges such as 28.00-35.00 and a date before
	// a time mix them); a country code and an area code in parentheses
	// may be set off differently: +1 512-374-0500, (555) 123-4567.
	var rest []byte
	for i, c := range seps {
		if c != ')' && !(plus && i == 0) {
			rest = append(rest, c)
		}
	}
	for _, c := range rest {
		if c != rest[0] {
			return false
		}
	}
	// Ranges: 1997-2002, 4852-4852, ISSN 1470-1448.
	if len(groups) == 2 && !plus && !paren && seps[0] == '-' && len(groups[0]) == 4 && len(groups[1]) == 4 {
		return false
	}
	if !plus && !paren {
		// Dates: 2002-08-22, 22.08.2002, 8-22-2002.
		if len(groups) == 3 && seps[0] == seps[1] && seps[0] != ' ' &&
			(len(groups[0]) == 4 && len(groups[1]) <= 2 && len(groups[2]) <= 2 ||
				len(groups[0]) <= 2 && len(groups[1]) <= 2 && len(groups[2]) == 4) {
			return false
		}
		// Thousands: 1 000 000, 12.345.678.
		thousands := seps[0] != '-'
		for i, g := range groups[1:] {
			if len(g) != 3 || seps[i] != seps[0] {
				thousands = false
			}
		}
		if thousands {
			return false
		}
	}
	return true
}
