package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/backup"
	"github.com/stretchr/testify/require"
)

// startTLS runs the server with HTTPS until stop is called.
func startTLS(t *testing.T, dataDir string, tlsCfg *server.TLSConfig) (addr string, stop func()) {
	addr, _, stop = startTLSOutput(t, dataDir, tlsCfg)
	return addr, stop
}

// startTLSOutput is startTLS that also returns what the server printed.
func startTLSOutput(t *testing.T, dataDir string, tlsCfg *server.TLSConfig) (addr, output string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	out := &syncBuffer{}
	go func() {
		done <- server.Run(ctx, server.Config{DataDir: dataDir, Listener: ln, Out: out, TLS: tlsCfg, Ready: func(a string) { ready <- a }})
	}()
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("server stopped: %v\n%s", err, out.String())
	case <-time.After(3 * time.Minute):
		t.Fatal("server did not become ready")
	}
	require.Contains(t, out.String(), "serving https://")
	return addr, out.String(), func() { cancel(); require.NoError(t, <-done) }
}

// TestServeTLSAndRestoreABackup talks to the server with a real TLS client that
// trusts only the certificate the server generated, and checks that the
// certificate is reused on the next start; then serves the operator's own
// certificate files; and last backs up over HTTPS, restores and serves the
// restored data directory.
func TestServeTLSAndRestoreABackup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr, output, stop := startTLSOutput(t, dir, &server.TLSConfig{SelfSigned: true})
	token := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(output)
	require.NotEmpty(t, token)

	pemBytes, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	require.NoError(t, err)
	fi, err := os.Stat(filepath.Join(dir, "tls", "key.pem"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pemBytes))
	selfSignedPool := pool
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get("https://" + addr + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode, string(body))
	require.Equal(t, uint16(tls.VersionTLS13), res.TLS.Version)
	leaf := res.TLS.PeerCertificates[0]
	require.IsType(t, &ecdsa.PublicKey{}, leaf.PublicKey)
	require.NoError(t, leaf.VerifyHostname("127.0.0.1"))
	require.NoError(t, leaf.VerifyHostname("localhost"))

	// A client that does not trust it refuses it; plain HTTP gets no API.
	_, err = http.Get("https://" + addr + "/healthz")
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)
	res, err = http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	stop()

	addr, stop = startTLS(t, dir, &server.TLSConfig{SelfSigned: true})
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err = client.Get("https://" + addr + "/healthz")
	require.NoError(t, err, "the certificate made on the first start is reused")
	res.Body.Close()
	require.Equal(t, leaf.Raw, res.TLS.PeerCertificates[0].Raw)
	stop()

	// The operator's own certificate and key files (here one made by the
	// test, standing for one from their CA), in the same data directory
	// so that the compiled modules are warm.
	certFile, keyFile := writeCert(t, "millrace.lan")
	addr, stop = startTLS(t, dir, &server.TLSConfig{CertFile: certFile, KeyFile: keyFile})
	pemBytes, err = os.ReadFile(certFile)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pemBytes))
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "millrace.lan"}}}
	res, err = client.Get("https://" + addr + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	stop()

	err = server.Run(context.Background(), server.Config{DataDir: t.TempDir(), Listener: mustListen(t), Out: io.Discard, TLS: &server.TLSConfig{CertFile: certFile}})
	require.ErrorContains(t, err, "both -tls-cert and -tls-key")
	err = server.Run(context.Background(), server.Config{DataDir: t.TempDir(), Listener: mustListen(t), Out: io.Discard, TLS: &server.TLSConfig{CertFile: keyFile, KeyFile: keyFile}})
	require.ErrorContains(t, err, "loading the TLS certificate")

	// Back up over HTTPS, restore into a new folder, serve from it: the
	// same token, secret and certificate are there (the issue's "back up,
	// wipe, restore, and find everything as it was").
	addr, stop = startTLS(t, dir, &server.TLSConfig{SelfSigned: true})
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: selfSignedPool}}}
	status, _ := callWith(t, client, token, http.MethodPut, "https://"+addr+"/v1/secrets/BACKED_UP", map[string]any{"value": "v"})
	require.Equal(t, http.StatusNoContent, status)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	archive := backupOver(t, client, token, "https://"+addr+"/v1/backups", id.Recipient().String())
	stop()
	restored := filepath.Join(t.TempDir(), "restored")
	_, err = backup.Restore(context.Background(), bytes.NewReader(archive), backup.Target{DataDir: restored}, id)
	require.NoError(t, err)
	// The compiled-code cache is derived and not in backups; copying it
	// only spares this test compiling the built-in modules again.
	require.NoError(t, os.CopyFS(filepath.Join(restored, "cache"), os.DirFS(filepath.Join(dir, "cache"))))
	addr, stop = startTLS(t, restored, &server.TLSConfig{SelfSigned: true})
	defer stop()
	status, listing := callWith(t, client, token, http.MethodGet, "https://"+addr+"/v1/secrets", nil)
	require.Equal(t, http.StatusOK, status, "the restored server knows the token and serves the restored certificate")
	require.Contains(t, fmt.Sprint(listing["secrets"]), "BACKED_UP")
}

func callWith(t *testing.T, client *http.Client, token, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &m)
	return res.StatusCode, m
}

func backupOver(t *testing.T, client *http.Client, token, url, recipient string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"recipients":["`+recipient+`"]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	return b
}

// writeCert makes a certificate for name with its own key, as PEM files.
func writeCert(t *testing.T, name string) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

func mustListen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}
