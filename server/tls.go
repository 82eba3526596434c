package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// TLSConfig says how the server serves HTTPS: from a certificate and key
// the operator gives (CertFile, KeyFile), or from a self-signed
// certificate it makes for a LAN and keeps in the data directory.
type TLSConfig struct {
	CertFile, KeyFile string
	// SelfSigned makes (once, then reuses) an ECDSA P-256 certificate in
	// DataDir/tls whose names cover the listen address, the host name,
	// localhost and, for a wildcard address, every interface address.
	SelfSigned bool
	// Hosts are more names or addresses for the self-signed certificate.
	Hosts []string
}

// selfSignedValidity is how long a generated certificate lives; it is
// made again when less than a month is left.
const selfSignedValidity = 397 * 24 * time.Hour

// serverTLS returns the tls.Config to serve with, and the certificate's
// SHA-256 fingerprint for the start-up message (clients of a self-signed
// certificate pin or compare it).
func (c *TLSConfig) serverTLS(dataDir, addr string) (*tls.Config, string, error) {
	var cert tls.Certificate
	var err error
	switch {
	case c.SelfSigned && (c.CertFile != "" || c.KeyFile != ""):
		return nil, "", errors.New("-tls-self-signed cannot be combined with -tls-cert/-tls-key")
	case c.SelfSigned:
		cert, err = selfSigned(filepath.Join(dataDir, "tls"), append(listenNames(addr), c.Hosts...))
	case c.CertFile == "" || c.KeyFile == "":
		return nil, "", errors.New("HTTPS needs both -tls-cert and -tls-key (or -tls-self-signed)")
	default:
		cert, err = tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			err = fmt.Errorf("loading the TLS certificate %s and key %s: %w (both PEM; the certificate file may hold the chain)", c.CertFile, c.KeyFile, err)
		}
	}
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, hex.EncodeToString(sum[:]), nil
}

// listenNames lists what a client may call the server: the listen host,
// the machine's name and loopback names, and for a wildcard listen
// address every interface address.
func listenNames(addr string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					names = append(names, n.IP.String())
				}
			}
		}
	} else {
		names = append(names, host)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// selfSigned loads dir/cert.pem and dir/key.pem when they exist, cover
// names and stay valid for a month; otherwise it makes new ones.
func selfSigned(dir string, names []string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err == nil && time.Now().Add(30*24*time.Hour).Before(leaf.NotAfter) && covers(leaf, names) {
			return cert, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Millrace (self-signed)"}, CommonName: host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// covers reports whether the certificate names every name.
func covers(leaf *x509.Certificate, names []string) bool {
	for _, n := range names {
		if n != "" && leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
