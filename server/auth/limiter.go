package auth

import (
	"sync"
	"time"
)

// LimitConfig says how many failed sign-ins are tolerated. A username that
// fails UserFailures times, or a client address that fails IPFailures
// times, within Window is locked out for Lockout; while locked out, even
// the right password is refused (429 with Retry-After). The address limit
// is higher because several people may share one address (NAT, a proxy).
type LimitConfig struct {
	UserFailures int
	IPFailures   int
	Window       time.Duration
	Lockout      time.Duration
}

// DefaultLimits: 5 failures per username or 20 per address in 15 minutes
// lock that username or address out for 15 minutes.
var DefaultLimits = LimitConfig{UserFailures: 5, IPFailures: 20, Window: 15 * time.Minute, Lockout: 15 * time.Minute}

// maxTracked bounds the limiter's memory under a flood of made-up
// usernames: past it, entries that no longer matter are dropped first.
const maxTracked = 100_000

type failures struct {
	count       int
	windowStart time.Time
	lockedUntil time.Time
}

// Limiter counts failed sign-ins per username and per client address.
// It lives in memory, per process: several servers on one PostgreSQL each
// count their own (an attacker gets at most their number times the limit).
type Limiter struct {
	cfg    LimitConfig
	mu     sync.Mutex
	byUser map[string]*failures
	byIP   map[string]*failures
}

// NewLimiter returns a limiter; zero fields of cfg take DefaultLimits.
func NewLimiter(cfg LimitConfig) *Limiter {
	if cfg.UserFailures <= 0 {
		cfg.UserFailures = DefaultLimits.UserFailures
	}
	if cfg.IPFailures <= 0 {
		cfg.IPFailures = DefaultLimits.IPFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultLimits.Window
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = DefaultLimits.Lockout
	}
	return &Limiter{cfg: cfg, byUser: map[string]*failures{}, byIP: map[string]*failures{}}
}

// Allow reports whether a sign-in for username from ip may be tried now,
// and if not, how long until it may.
func (l *Limiter) Allow(username, ip string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	wait := time.Duration(0)
	for _, f := range []*failures{l.byUser[username], l.byIP[ip]} {
		if f != nil && now.Before(f.lockedUntil) {
			wait = max(wait, f.lockedUntil.Sub(now))
		}
	}
	return wait, wait == 0
}

// Fail records a failed sign-in; username is "" for a sign-in with a
// token, which counts against the address only.
func (l *Limiter) Fail(username, ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if username != "" {
		l.fail(l.byUser, username, l.cfg.UserFailures, now)
	}
	l.fail(l.byIP, ip, l.cfg.IPFailures, now)
}

func (l *Limiter) fail(m map[string]*failures, key string, limit int, now time.Time) {
	f := m[key]
	if f == nil {
		if len(m) >= maxTracked {
			l.prune(m, now)
			if len(m) >= maxTracked {
				// Still full of live entries: stop tracking new keys
				// rather than grow; the address limit still holds for
				// usernames, and the oldest lockouts end soon.
				return
			}
		}
		f = &failures{windowStart: now}
		m[key] = f
	}
	if now.Sub(f.windowStart) > l.cfg.Window {
		f.count, f.windowStart = 0, now
	}
	f.count++
	if f.count >= limit {
		f.lockedUntil = now.Add(l.cfg.Lockout)
		f.count, f.windowStart = 0, now
	}
}

// prune drops entries that neither lock out nor count in a live window.
func (l *Limiter) prune(m map[string]*failures, now time.Time) {
	for k, f := range m {
		if !now.Before(f.lockedUntil) && now.Sub(f.windowStart) > l.cfg.Window {
			delete(m, k)
		}
	}
}

// Succeed forgets a username's failures after a successful sign-in. The
// address's count stays: one right password must not reset a guessing
// run against other usernames.
func (l *Limiter) Succeed(username string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byUser, username)
}
