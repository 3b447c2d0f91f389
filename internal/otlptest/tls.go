package otlptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles is a throwaway certificate authority and two certificates it
// signed, written as PEM files in a test's temporary directory.
type TLSFiles struct {
	// CAFile is the CA certificate: what a client or server verifies with.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key, for
	// mutual TLS.
	CertFile, KeyFile string
	// ServerCertFile and ServerKeyFile are the server certificate, valid
	// for localhost, 127.0.0.1 and ::1, and its key.
	ServerCertFile, ServerKeyFile string
	// Server serves the server certificate and trusts the CA for client
	// certificates (ClientCAs) without requiring one; set ClientAuth to
	// tls.RequireAndVerifyClientCert for mutual TLS. Pass it to [WithTLS].
	Server *tls.Config
}

// NewTLSFiles makes a CA, a server and a client certificate, valid for a
// day, with fresh P-256 keys.
func NewTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "otlptest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("otlptest: CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("otlptest: CA certificate: %v", err)
	}

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, server bool) (certPEM, keyPEM []byte) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("otlptest: %s certificate: %v", cn, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("otlptest: %s key: %v", cn, err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	}
	serverCert, serverKey := issue(2, "otlptest server", x509.ExtKeyUsageServerAuth, true)
	clientCert, clientKey := issue(3, "otlptest client", x509.ExtKeyUsageClientAuth, false)

	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatalf("otlptest: %v", err)
		}
		return p
	}
	files := TLSFiles{
		CAFile:         write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		CertFile:       write("client.pem", clientCert),
		KeyFile:        write("client-key.pem", clientKey),
		ServerCertFile: write("server.pem", serverCert),
		ServerKeyFile:  write("server-key.pem", serverKey),
	}
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatalf("otlptest: server key pair: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	files.Server = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.NoClientCert,
	}
	return files
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("otlptest: key: %v", err)
	}
	return key
}
