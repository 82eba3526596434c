// Package auth decides who is calling and what they may do: API tokens,
// console users with argon2id passwords, sessions with CSRF tokens, roles
// derived from scope names, and sign-in rate limits.
//
// A token is shown once when it is created; only its SHA-256 is stored, so
// a leaked database does not leak working tokens. Session ids are stored
// the same way.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/millrace/millrace/server/store"
)

// Scope is a right a token may hold. Every API operation requires one.
type Scope = string

// Scopes, one per class of operation.
const (
	ScopeModulesRead    Scope = "modules:read"
	ScopeModulesWrite   Scope = "modules:write"  // upload and delete
	ScopeModulesGrant   Scope = "modules:grant"  // change what a module may do
	ScopeModulesInvoke  Scope = "modules:invoke" // run modules
	ScopeSecretsRead    Scope = "secrets:read"   // list secret names, never values
	ScopeSecretsWrite   Scope = "secrets:write"
	ScopeTokensAdmin    Scope = "tokens:admin" // create, list and revoke tokens
	ScopeWorkflowsRead  Scope = "workflows:read"
	ScopeWorkflowsWrite Scope = "workflows:write" // save, publish and delete workflows
	ScopeWorkflowsRun   Scope = "workflows:run"   // start runs
	ScopeModelsRead     Scope = "models:read"     // list models and the accelerator's state
	// ScopeModelsAdmin registers and removes models: a registration names
	// a path on the server's disk, which the accelerator then reads.
	ScopeModelsAdmin   Scope = "models:admin"
	ScopeDatasetsRead  Scope = "datasets:read"  // list datasets, read their versions and rows
	ScopeDatasetsWrite Scope = "datasets:write" // upload and delete datasets
	// ScopeUsersAdmin creates, changes and deletes console users.
	ScopeUsersAdmin Scope = "users:admin"
	// ScopeAuditRead reads the audit log.
	ScopeAuditRead Scope = "audit:read"
	// ScopeBackupsAdmin makes and downloads backups: a backup holds every
	// secret and the key that opens them.
	ScopeBackupsAdmin Scope = "backups:admin"
	// ScopeSecretsAdmin rotates the key secrets are sealed with.
	ScopeSecretsAdmin Scope = "secrets:admin"
	// ScopeMetricsRead scrapes /metrics from a non-loopback address.
	ScopeMetricsRead   Scope = "metrics:read"
	ScopeTrainingRead  Scope = "training:read"  // list training jobs and follow their progress
	ScopeTrainingWrite Scope = "training:write" // start, cancel and delete training jobs
	// ScopeAll holds every scope, including scopes added by later versions:
	// the first admin token has it, so an upgrade cannot lock the admin out.
	ScopeAll Scope = "*"
)

// AllScopes lists every concrete scope.
var AllScopes = []Scope{ScopeModulesRead, ScopeModulesWrite, ScopeModulesGrant, ScopeModulesInvoke, ScopeSecretsRead, ScopeSecretsWrite, ScopeTokensAdmin, ScopeWorkflowsRead, ScopeWorkflowsWrite, ScopeWorkflowsRun, ScopeModelsRead, ScopeModelsAdmin, ScopeDatasetsRead, ScopeDatasetsWrite, ScopeUsersAdmin, ScopeAuditRead, ScopeBackupsAdmin, ScopeSecretsAdmin, ScopeMetricsRead, ScopeTrainingRead, ScopeTrainingWrite}

// tokenPrefix makes tokens recognisable to people and secret scanners.
const tokenPrefix = "mr_"

// ErrUnauthenticated means no valid token was presented.
var ErrUnauthenticated = errors.New("missing or invalid API token")

// ErrTokenExpired means the token was valid but its expiry passed.
var ErrTokenExpired = errors.New("the API token has expired")

// Principal is who is calling and what they may do: a user (signed in
// with a password, or through one of their tokens) or a token that
// belongs to no user.
type Principal struct {
	UserID    string
	Username  string
	Role      string // the user's role, or the token's; "" for a token with explicit scopes
	TokenID   string // the token used, if any
	TokenName string
	Scopes    []Scope // what the caller may do now
}

// Has reports whether the principal holds a scope.
func (p Principal) Has(scope Scope) bool {
	return slices.Contains(p.Scopes, scope) || slices.Contains(p.Scopes, ScopeAll)
}

// ActorID names the principal in the audit log: the user, else the token.
func (p Principal) ActorID() string {
	if p.UserID != "" {
		return p.UserID
	}
	return p.TokenID
}

// ActorName is the principal's human-readable name.
func (p Principal) ActorName() string {
	if p.Username != "" {
		return p.Username
	}
	return p.TokenName
}

// String describes the principal in error messages.
func (p Principal) String() string {
	switch {
	case p.UserID != "" && p.TokenID != "":
		return "the token " + p.TokenID + " of user " + p.Username
	case p.UserID != "":
		return "the user " + p.Username + " (" + p.Role + ")"
	}
	return "the token " + p.TokenID
}

// UserPrincipal is a user signed in with a password.
func UserPrincipal(u store.User) Principal {
	return Principal{UserID: u.ID, Username: u.Username, Role: u.Role, Scopes: RoleScopes(u.Role)}
}

// Tokens issues and verifies tokens.
type Tokens struct {
	store store.Store
	Now   func() time.Time // the clock; tests move it

	mu      sync.Mutex
	touched map[string]time.Time // token id → last written use
}

// New returns a token service over a store.
func New(s store.Store) *Tokens {
	return &Tokens{store: s, Now: time.Now, touched: map[string]time.Time{}}
}

// Hash returns the stored form of a token or session id.
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// TokenSpec describes a token to issue.
type TokenSpec struct {
	Name string
	// UserID is the user the token acts for ("" for none); the token can
	// never do more than the user's role allows at the time of use.
	UserID string
	// Role gives the token a role's scopes, present and future; when
	// empty, Scopes lists them.
	Role      string
	Scopes    []Scope
	ExpiresAt *time.Time
}

// Issue creates a token with the given scopes and returns its record and
// the secret, which is never available again.
func (t *Tokens) Issue(ctx context.Context, name string, scopes []Scope) (store.Token, string, error) {
	return t.IssueToken(ctx, TokenSpec{Name: name, Scopes: scopes})
}

// IssueToken creates a token and returns its record and the secret, which
// is never available again.
func (t *Tokens) IssueToken(ctx context.Context, spec TokenSpec) (store.Token, string, error) {
	if err := checkScopes(spec.Scopes); err != nil {
		return store.Token{}, "", err
	}
	if spec.Role != "" && !ValidRole(spec.Role) {
		return store.Token{}, "", fmt.Errorf("unknown role %q; roles are %v", spec.Role, Roles)
	}
	secret := make([]byte, 32)
	id := make([]byte, 6)
	if _, err := rand.Read(secret); err != nil {
		return store.Token{}, "", err
	}
	if _, err := rand.Read(id); err != nil {
		return store.Token{}, "", err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	rec := store.Token{ID: "tok_" + hex.EncodeToString(id), Name: spec.Name, Hash: Hash(token), Scopes: slices.Clone(spec.Scopes),
		UserID: spec.UserID, Role: spec.Role, ExpiresAt: spec.ExpiresAt, CreatedAt: t.Now().UTC()}
	if rec.Scopes == nil {
		rec.Scopes = []Scope{}
	}
	if err := t.store.CreateToken(ctx, rec); err != nil {
		return store.Token{}, "", err
	}
	return rec, token, nil
}

// BootstrapUsername is the admin user the first start creates.
const BootstrapUsername = "admin"

// Bootstrap, on a store with no token and no user, creates the admin user
// (who has no password until one is set) with a token holding every
// scope, and returns the token's secret; it returns "" otherwise. A
// console user created first with `millrace user create` makes it
// unnecessary, and then none is made.
func (t *Tokens) Bootstrap(ctx context.Context) (string, error) {
	existing, err := t.store.ListTokens(ctx)
	if err != nil {
		return "", err
	}
	users, err := t.store.ListUsers(ctx)
	if err != nil {
		return "", err
	}
	if len(existing) > 0 || len(users) > 0 {
		return "", nil
	}
	admin := store.User{ID: NewUserID(), Username: BootstrapUsername, Role: RoleAdmin, CreatedAt: t.Now().UTC()}
	if err := t.store.CreateUser(ctx, admin); err != nil {
		return "", err
	}
	_, token, err := t.IssueToken(ctx, TokenSpec{Name: "admin", UserID: admin.ID, Scopes: []Scope{ScopeAll}})
	return token, err
}

// Verify resolves an Authorization header value to a live token whose
// user, if it has one, exists and is enabled.
func (t *Tokens) Verify(ctx context.Context, header string) (store.Token, error) {
	tok, err := t.verifyHeader(ctx, header)
	if err != nil {
		return tok, err
	}
	if _, err := t.Principal(ctx, tok); err != nil {
		return store.Token{}, err
	}
	return tok, nil
}

func (t *Tokens) verifyHeader(ctx context.Context, header string) (store.Token, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return store.Token{}, ErrUnauthenticated
	}
	return t.VerifySecret(ctx, strings.TrimSpace(token))
}

// VerifySecret resolves a token's secret to a live token and records its
// use (at most once a minute).
func (t *Tokens) VerifySecret(ctx context.Context, secret string) (store.Token, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 256 {
		return store.Token{}, ErrUnauthenticated
	}
	// Lookup is by hash: an index probe on a value the caller cannot
	// choose, so timing reveals nothing useful about stored tokens.
	rec, err := t.store.TokenByHash(ctx, Hash(secret))
	if errors.Is(err, store.ErrNotFound) {
		return store.Token{}, ErrUnauthenticated
	} else if err != nil {
		return rec, err
	}
	now := t.Now().UTC()
	if rec.ExpiresAt != nil && !now.Before(*rec.ExpiresAt) {
		return store.Token{}, ErrTokenExpired
	}
	t.touch(ctx, rec, now)
	return rec, nil
}

// touch writes a token's last use when the stored one is a minute old and
// this process has not written it in the last minute, so that busy
// tokens cost a write a minute, not one a request.
func (t *Tokens) touch(ctx context.Context, rec store.Token, now time.Time) {
	if rec.LastUsedAt != nil && now.Sub(*rec.LastUsedAt) < touchEvery {
		return
	}
	t.mu.Lock()
	last, seen := t.touched[rec.ID]
	due := !seen || now.Sub(last) >= touchEvery
	if due {
		if len(t.touched) > 10_000 {
			clear(t.touched)
		}
		t.touched[rec.ID] = now
	}
	t.mu.Unlock()
	if due {
		if err := t.store.TouchToken(ctx, rec.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			slog.WarnContext(ctx, "recording a token's use", "token", rec.ID, "err", err)
		}
	}
}

// Principal returns what a live token may do: its role's or its own
// scopes, cut down to its user's role. A token whose user was disabled or
// deleted is refused.
func (t *Tokens) Principal(ctx context.Context, tok store.Token) (Principal, error) {
	role := tok.Role
	if role == "" && slices.Contains(tok.Scopes, ScopeAll) {
		role = RoleAdmin
	}
	p := Principal{TokenID: tok.ID, TokenName: tok.Name, Role: role, Scopes: tok.Scopes}
	if tok.Role != "" {
		p.Scopes = RoleScopes(tok.Role)
	}
	if tok.UserID == "" {
		return p, nil
	}
	u, err := t.store.User(ctx, tok.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return Principal{}, ErrUnauthenticated
	} else if err != nil {
		return Principal{}, err
	}
	p.UserID, p.Username = u.ID, u.Username
	p.Scopes = intersect(p.Scopes, RoleScopes(u.Role))
	if role != "" && slices.Index(Roles, u.Role) < slices.Index(Roles, role) {
		p.Role = u.Role // the user was demoted: so is the token
	}
	return p, nil
}

// Authenticate resolves an Authorization header to a principal.
func (t *Tokens) Authenticate(ctx context.Context, header string) (Principal, error) {
	tok, err := t.verifyHeader(ctx, header)
	if err != nil {
		return Principal{}, err
	}
	return t.Principal(ctx, tok)
}

// Has reports whether a token's own scopes (or its role's) hold a scope.
// It does not cut them down to the token's user's role, nor check the
// user is enabled: for what a caller may do, use Authenticate and
// Principal.Has.
func Has(tok store.Token, scope Scope) bool {
	scopes := tok.Scopes
	if tok.Role != "" {
		scopes = RoleScopes(tok.Role)
	}
	return slices.Contains(scopes, scope) || slices.Contains(scopes, ScopeAll)
}

// NewUserID returns a fresh user id.
func NewUserID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "usr_" + hex.EncodeToString(b)
}

// SessionPrincipal returns what a live session may do: its user's role,
// or, for a session signed in with a token, what that token may do now. A
// session whose user or token is gone, disabled or expired is refused.
func (t *Tokens) SessionPrincipal(ctx context.Context, se store.Session) (Principal, error) {
	if se.TokenID != "" {
		tok, err := t.store.Token(ctx, se.TokenID)
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, ErrSessionExpired
		} else if err != nil {
			return Principal{}, err
		}
		if tok.ExpiresAt != nil && !t.Now().Before(*tok.ExpiresAt) {
			return Principal{}, ErrSessionExpired
		}
		p, err := t.Principal(ctx, tok)
		if errors.Is(err, ErrUnauthenticated) {
			return Principal{}, ErrSessionExpired
		}
		return p, err
	}
	u, err := t.store.User(ctx, se.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return Principal{}, ErrSessionExpired
	} else if err != nil {
		return Principal{}, err
	}
	return UserPrincipal(u), nil
}
