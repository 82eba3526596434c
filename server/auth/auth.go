// Package auth issues and checks API tokens. A token is shown once when it
// is created; only its SHA-256 is stored, so a leaked database does not leak
// working tokens.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	ScopeTrainingRead  Scope = "training:read"  // list training jobs and follow their progress
	ScopeTrainingWrite Scope = "training:write" // start, cancel and delete training jobs
	// ScopeAll holds every scope, including scopes added by later versions:
	// the first admin token has it, so an upgrade cannot lock the admin out.
	ScopeAll Scope = "*"
)

// AllScopes lists every concrete scope.
var AllScopes = []Scope{ScopeModulesRead, ScopeModulesWrite, ScopeModulesGrant, ScopeModulesInvoke, ScopeSecretsRead, ScopeSecretsWrite, ScopeTokensAdmin, ScopeWorkflowsRead, ScopeWorkflowsWrite, ScopeWorkflowsRun, ScopeModelsRead, ScopeModelsAdmin, ScopeDatasetsRead, ScopeDatasetsWrite, ScopeTrainingRead, ScopeTrainingWrite}

// tokenPrefix makes tokens recognisable to people and secret scanners.
const tokenPrefix = "mr_"

// ErrUnauthenticated means no valid token was presented.
var ErrUnauthenticated = errors.New("missing or invalid API token")

// Tokens issues and verifies tokens.
type Tokens struct {
	store store.Store
}

// New returns a token service over a store.
func New(s store.Store) *Tokens { return &Tokens{store: s} }

// Hash returns the stored form of a token.
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Issue creates a token with the given scopes and returns its record and
// the secret, which is never available again.
func (t *Tokens) Issue(ctx context.Context, name string, scopes []Scope) (store.Token, string, error) {
	for _, s := range scopes {
		if s != ScopeAll && !slices.Contains(AllScopes, s) {
			return store.Token{}, "", fmt.Errorf("unknown scope %q; scopes are %v", s, AllScopes)
		}
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
	rec := store.Token{ID: "tok_" + hex.EncodeToString(id), Name: name, Hash: Hash(token), Scopes: slices.Clone(scopes)}
	if rec.Scopes == nil {
		rec.Scopes = []Scope{}
	}
	if err := t.store.CreateToken(ctx, rec); err != nil {
		return store.Token{}, "", err
	}
	return rec, token, nil
}

// Bootstrap creates an admin token holding every scope when the store has
// no token at all, and returns its secret; it returns "" otherwise.
func (t *Tokens) Bootstrap(ctx context.Context) (string, error) {
	existing, err := t.store.ListTokens(ctx)
	if err != nil {
		return "", err
	}
	if len(existing) > 0 {
		return "", nil
	}
	_, token, err := t.Issue(ctx, "admin", []Scope{ScopeAll})
	return token, err
}

// Verify resolves an Authorization header value to a token.
func (t *Tokens) Verify(ctx context.Context, header string) (store.Token, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(token, tokenPrefix) {
		return store.Token{}, ErrUnauthenticated
	}
	// Lookup is by hash: an index probe on a value the caller cannot
	// choose, so timing reveals nothing useful about stored tokens.
	rec, err := t.store.TokenByHash(ctx, Hash(strings.TrimSpace(token)))
	if errors.Is(err, store.ErrNotFound) {
		return store.Token{}, ErrUnauthenticated
	}
	return rec, err
}

// Has reports whether a token holds a scope.
func Has(tok store.Token, scope Scope) bool {
	return slices.Contains(tok.Scopes, scope) || slices.Contains(tok.Scopes, ScopeAll)
}
