package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password rules. Long passphrases are welcome; the maximum only bounds
// the work one sign-in can ask of the server.
const (
	MinPasswordLength = 12   // characters
	MaxPasswordLength = 1024 // bytes
)

// PasswordParams are argon2id's cost parameters. They are stored in each
// hash, so raising them later still verifies old hashes.
type PasswordParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	SaltLen   uint32
	KeyLen    uint32
}

// DefaultPasswordParams follow RFC 9106's second recommended option
// (64 MiB, 3 passes, 4 lanes): about 0.1–0.3 s per hash on one server
// core, which costs an offline attacker the same for every guess.
var DefaultPasswordParams = PasswordParams{MemoryKiB: 64 * 1024, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// hashSlots bounds concurrent argon2id work: each hash holds MemoryKiB of
// RAM, and a flood of sign-ins must not exhaust the server's memory.
var hashSlots = make(chan struct{}, 4)

// ErrPasswordPolicy is wrapped by errors about a password's shape.
var ErrPasswordPolicy = errors.New("password does not meet the policy")

// CheckPasswordPolicy reports whether a new password is acceptable.
func CheckPasswordPolicy(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinPasswordLength {
		return fmt.Errorf("%w: it has %d characters; use at least %d", ErrPasswordPolicy, n, MinPasswordLength)
	}
	if len(pw) > MaxPasswordLength {
		return fmt.Errorf("%w: it is longer than %d bytes", ErrPasswordPolicy, MaxPasswordLength)
	}
	return nil
}

// HashPassword hashes a password with argon2id and a random salt, in the
// PHC string format: $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>.
func HashPassword(pw string, p PasswordParams) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	hashSlots <- struct{}{}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	<-hashSlots
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches a hash made by HashPassword,
// comparing in constant time. An empty or malformed hash matches nothing.
func VerifyPassword(hash, pw string) bool {
	p, salt, want, ok := parseHash(hash)
	if !ok || len(pw) > MaxPasswordLength {
		// Spend the same work as a real check, so that timing does not
		// tell which usernames exist or have a password.
		p, salt, want, _ = parseHash(dummyHash())
		pw = "\x00" + pw
	}
	hashSlots <- struct{}{}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	<-hashSlots
	return subtle.ConstantTimeCompare(got, want) == 1 && ok
}

var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("millrace-no-such-user", DefaultPasswordParams)
	if err != nil {
		panic(err) // crypto/rand failed: nothing sensible is left to do
	}
	return h
})

// parseHash decodes a PHC argon2id string, refusing parameters that would
// make one check unreasonably expensive (a hash restored from elsewhere).
func parseHash(h string) (PasswordParams, []byte, []byte, bool) {
	var p PasswordParams
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, false
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &threads); n != 3 || err != nil {
		return p, nil, nil, false
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > 1<<20 || p.Time < 1 || p.Time > 64 || threads < 1 || threads > 64 {
		return p, nil, nil, false
	}
	p.Threads = uint8(threads)
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, false
	}
	return p, salt, key, true
}
