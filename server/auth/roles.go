package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Roles of users and tokens, from least to most trusted.
const (
	RoleViewer   = "viewer"   // reads everything but secrets' names, users, tokens and the audit log
	RoleOperator = "operator" // and starts, cancels and retries runs and invokes modules
	RoleEditor   = "editor"   // and uploads modules, edits and publishes workflows and triggers
	RoleAdmin    = "admin"    // everything, including scopes added by later versions
)

// Roles lists the roles from least to most trusted.
var Roles = []string{RoleViewer, RoleOperator, RoleEditor, RoleAdmin}

// roleExceptions place scopes where the suffix rule would not. Each needs
// a reason.
var roleExceptions = map[Scope]string{
	// Listing secrets returns names only, never values; editors need the
	// names to write workflows and grants that use them.
	ScopeSecretsRead: RoleEditor,
}

// adminAreas hold scopes that only admins get, whatever their suffix: they
// reveal or change who may do what (users, tokens, the audit log) or hold
// credentials (secrets).
var adminAreas = []string{"secrets", "tokens", "users", "audit"}

// MinRole returns the least trusted role that holds a scope. It derives
// the answer from the scope's name, so that scopes other packages add land
// in the right role without a table to edit: <area>:read goes to viewers,
// :run and :invoke to operators, :write to editors, and :admin, :grant and
// anything unrecognised to admins only; see roleExceptions and adminAreas.
func MinRole(scope Scope) string {
	if r, ok := roleExceptions[scope]; ok {
		return r
	}
	area, action, _ := strings.Cut(scope, ":")
	if slices.Contains(adminAreas, area) {
		return RoleAdmin
	}
	switch action {
	case "read":
		return RoleViewer
	case "run", "invoke":
		return RoleOperator
	case "write":
		return RoleEditor
	}
	return RoleAdmin
}

// ValidRole reports whether role names a role.
func ValidRole(role string) bool { return slices.Contains(Roles, role) }

// RoleScopes returns the scopes a role holds. Admins hold ScopeAll, so
// that an upgrade adding scopes cannot lock them out.
func RoleScopes(role string) []Scope {
	if role == RoleAdmin {
		return []Scope{ScopeAll}
	}
	rank := slices.Index(Roles, role)
	if rank < 0 {
		return []Scope{}
	}
	out := []Scope{}
	for _, s := range AllScopes {
		if slices.Index(Roles, MinRole(s)) <= rank {
			out = append(out, s)
		}
	}
	return out
}

// Within reports whether every scope of want is held by have, and names
// the first that is not.
func Within(want, have []Scope) (string, bool) {
	if slices.Contains(have, ScopeAll) {
		return "", true
	}
	for _, s := range want {
		if !slices.Contains(have, s) {
			return s, false
		}
	}
	return "", true
}

// intersect returns the scopes held by both a and b.
func intersect(a, b []Scope) []Scope {
	switch {
	case slices.Contains(a, ScopeAll):
		return slices.Clone(b)
	case slices.Contains(b, ScopeAll):
		return slices.Clone(a)
	}
	out := []Scope{}
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkScopes rejects unknown scope names.
func checkScopes(scopes []Scope) error {
	for _, s := range scopes {
		if s != ScopeAll && !slices.Contains(AllScopes, s) {
			return fmt.Errorf("unknown scope %q; scopes are %v", s, AllScopes)
		}
	}
	return nil
}
