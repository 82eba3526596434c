package httpapi_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/httpapi"
	"github.com/millrace/millrace/server/secrets"
	"github.com/stretchr/testify/require"
)

func TestRotateSecretKeyAPI(t *testing.T) {
	t.Parallel()
	// The fixture's vault seals with 32 zero bytes: the key file holds them.
	path := filepath.Join(t.TempDir(), "secret.key")
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"
	require.NoError(t, os.WriteFile(path, []byte(zero), 0o600))
	var vault *secrets.Vault
	f := setupWith(t, func(d *httpapi.Deps) {
		vault = d.Vault
		d.RotateKey = func(ctx context.Context) (int, error) { return secrets.RotateKeyFile(ctx, d.Vault, path) }
	})
	res := f.doJSON(t, "PUT", "/v1/secrets/TOKEN", map[string]any{"value": "do-not-echo-me"})
	require.Equal(t, 204, res.status, string(res.body))

	res = f.doJSON(t, "POST", "/v1/secrets/rotate-key", nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.EqualValues(t, 1, res.json(t)["reencrypted"])
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotEqual(t, zero, string(b))
	v, err := vault.Reveal(context.Background(), "TOKEN")
	require.NoError(t, err)
	require.Equal(t, "do-not-echo-me", string(v))

	// The value never comes back through the API.
	res = f.doJSON(t, "GET", "/v1/secrets", nil)
	require.Equal(t, 200, res.status)
	require.NotContains(t, string(res.body), "do-not-echo-me")

	_, writer, err := f.tokens.Issue(context.Background(), "editor", []string{auth.ScopeSecretsWrite, auth.ScopeSecretsRead})
	require.NoError(t, err)
	res = f.do(t, writer, "POST", "/v1/secrets/rotate-key", strings.NewReader(""), "")
	require.Equal(t, 403, res.status)
	require.Contains(t, string(res.body), "secrets:admin")
}

func TestRotateSecretKeyFromEnvironment(t *testing.T) {
	t.Parallel()
	f := setup(t) // RotateKey nil: the key came from MILLRACE_SECRET_KEY
	res := f.doJSON(t, "POST", "/v1/secrets/rotate-key", nil)
	require.Equal(t, 409, res.status)
	require.Contains(t, string(res.body), "MILLRACE_SECRET_KEY")
}
