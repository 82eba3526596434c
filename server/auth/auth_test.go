package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/server/auth"
	"github.com/stretchr/testify/require"
)

// The role matrix of the README, scope by scope. A scope added later
// without a row here is placed by the suffix rule (TestRolesFollowSuffixes).
var matrix = map[string]string{
	auth.ScopeModulesRead:    auth.RoleViewer,
	auth.ScopeWorkflowsRead:  auth.RoleViewer,
	auth.ScopeModelsRead:     auth.RoleViewer,
	auth.ScopeModulesInvoke:  auth.RoleOperator,
	auth.ScopeWorkflowsRun:   auth.RoleOperator,
	auth.ScopeModulesWrite:   auth.RoleEditor,
	auth.ScopeWorkflowsWrite: auth.RoleEditor,
	auth.ScopeSecretsRead:    auth.RoleEditor, // names only: an explicit exception
	auth.ScopeModulesGrant:   auth.RoleAdmin,
	auth.ScopeModelsAdmin:    auth.RoleAdmin,
	auth.ScopeSecretsWrite:   auth.RoleAdmin,
	auth.ScopeTokensAdmin:    auth.RoleAdmin,
	auth.ScopeUsersAdmin:     auth.RoleAdmin,
	auth.ScopeAuditRead:      auth.RoleAdmin,
}

func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	for scope, role := range matrix {
		require.Equal(t, role, auth.MinRole(scope), scope)
	}
	require.Equal(t, []string{"*"}, auth.RoleScopes(auth.RoleAdmin), "admins hold every scope, present and future")
	require.NotContains(t, auth.RoleScopes(auth.RoleEditor), auth.ScopeSecretsWrite)
	require.Contains(t, auth.RoleScopes(auth.RoleEditor), auth.ScopeSecretsRead)
	require.Contains(t, auth.RoleScopes(auth.RoleOperator), auth.ScopeModulesRead, "roles include the ones below")
	require.Empty(t, auth.RoleScopes("root"))
}

// Scopes other packages add land in a role by their name alone.
func TestRolesFollowSuffixes(t *testing.T) {
	t.Parallel()
	for scope, role := range map[string]string{
		"datasets:read": auth.RoleViewer, "training:run": auth.RoleOperator, "datasets:write": auth.RoleEditor,
		"backups:admin": auth.RoleAdmin, "x:grant": auth.RoleAdmin, "x:frobnicate": auth.RoleAdmin, "noarea": auth.RoleAdmin,
		"secrets:rotate": auth.RoleAdmin, "users:read": auth.RoleAdmin, "audit:write": auth.RoleAdmin, "tokens:read": auth.RoleAdmin,
	} {
		require.Equal(t, role, auth.MinRole(scope), scope)
	}
}

func TestWithin(t *testing.T) {
	t.Parallel()
	_, ok := auth.Within([]string{"a", "b"}, []string{"*"})
	require.True(t, ok)
	missing, ok := auth.Within([]string{"a", "*"}, []string{"a", "b"})
	require.False(t, ok)
	require.Equal(t, "*", missing)
	_, ok = auth.Within(nil, nil)
	require.True(t, ok)
}

func TestPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("correct horse battery staple", auth.DefaultPasswordParams)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$"), h)
	require.True(t, auth.VerifyPassword(h, "correct horse battery staple"))
	require.False(t, auth.VerifyPassword(h, "correct horse battery stapl"))
	require.False(t, auth.VerifyPassword(h, ""))
	h2, err := auth.HashPassword("correct horse battery staple", auth.DefaultPasswordParams)
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salted")

	// Parameters travel in the hash: a cheaper one still verifies.
	cheap, err := auth.HashPassword("pw", auth.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	require.NoError(t, err)
	require.True(t, auth.VerifyPassword(cheap, "pw"))

	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=65536,t=3,p=4$", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
		require.False(t, auth.VerifyPassword(bad, "pw"), bad)
	}

	require.ErrorIs(t, auth.CheckPasswordPolicy("short"), auth.ErrPasswordPolicy)
	require.ErrorIs(t, auth.CheckPasswordPolicy(strings.Repeat("x", 2000)), auth.ErrPasswordPolicy)
	require.NoError(t, auth.CheckPasswordPolicy("twelve chars"))
}

func TestLimiterLocksOut(t *testing.T) {
	t.Parallel()
	l := auth.NewLimiter(auth.LimitConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range auth.DefaultLimits.UserFailures {
		_, ok := l.Allow("alice", "10.0.0.1", t0)
		require.True(t, ok, "attempt %d", i)
		l.Fail("alice", "10.0.0.1", t0)
	}
	wait, ok := l.Allow("alice", "10.0.0.2", t0.Add(time.Minute))
	require.False(t, ok, "the username is locked from any address")
	require.Equal(t, auth.DefaultLimits.Lockout-time.Minute, wait)
	_, ok = l.Allow("bob", "10.0.0.1", t0)
	require.True(t, ok, "other usernames from the address are fine under the address limit")
	_, ok = l.Allow("alice", "10.0.0.1", t0.Add(auth.DefaultLimits.Lockout))
	require.True(t, ok, "the lockout ends")

	// Failures spread beyond the window do not add up.
	for i := range 2 * auth.DefaultLimits.UserFailures {
		l.Fail("carol", "10.0.1."+string(rune('a'+i)), t0.Add(time.Duration(i)*auth.DefaultLimits.Window/2))
	}
	_, ok = l.Allow("carol", "10.0.2.1", t0.Add(time.Duration(2*auth.DefaultLimits.UserFailures)*auth.DefaultLimits.Window/2))
	require.True(t, ok)

	// Many usernames from one address lock the address.
	for i := range auth.DefaultLimits.IPFailures {
		l.Fail("user"+string(rune('a'+i)), "10.9.9.9", t0)
	}
	_, ok = l.Allow("someone-new", "10.9.9.9", t0)
	require.False(t, ok)

	// A success clears the username's count, not the address's.
	l.Fail("dave", "10.0.3.1", t0)
	l.Succeed("dave")
	for range auth.DefaultLimits.UserFailures - 1 {
		l.Fail("dave", "10.0.3.1", t0)
	}
	_, ok = l.Allow("dave", "10.0.3.1", t0)
	require.True(t, ok)
}

func TestCSRFToken(t *testing.T) {
	t.Parallel()
	id := strings.Repeat("a", 43)
	tok := auth.CSRFToken(id)
	require.True(t, auth.CheckCSRF(id, tok))
	require.False(t, auth.CheckCSRF(id, ""))
	require.False(t, auth.CheckCSRF(id, tok+"x"))
	require.False(t, auth.CheckCSRF(strings.Repeat("b", 43), tok))
	require.NotContains(t, tok, id)
}

// Cookie values and CSRF headers come from anyone: never a panic, and
// only well-formed ids are looked up.
func FuzzSessionCookie(f *testing.F) {
	f.Add(strings.Repeat("a", 43), "")
	f.Add("", "x")
	f.Add(strings.Repeat("é", 22), strings.Repeat("a", 43))
	f.Add("a=b; c", "\x00")
	f.Fuzz(func(t *testing.T, cookie, header string) {
		id, ok := auth.ParseSessionID(cookie)
		if ok {
			require.Len(t, id, 43)
			require.True(t, auth.CheckCSRF(id, auth.CSRFToken(id)))
		}
		if auth.CheckCSRF(cookie, header) {
			require.Equal(t, auth.CSRFToken(cookie), header)
		}
	})
}
