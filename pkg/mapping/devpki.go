package mapping

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevPKI is a throw-away certificate authority with a server certificate for the mapping
// service and a client certificate per caller, written as PEM files: for the local stack and
// tests. In a cluster cert-manager (or a mesh) issues the certificates instead.
type DevPKI struct {
	// CA is the CA bundle that verifies both the server and the callers.
	CA string
	// ServerCert and ServerKey are the mapping service's.
	ServerCert, ServerKey string
	// Clients maps each caller to its certificate and key files.
	Clients map[string][2]string
}

// WriteDevPKI makes a DevPKI in dir (created when missing): the server certificate is valid
// for serverHosts (names or IP addresses), each client certificate carries its caller as the
// Common Name. Everything is valid for a week.
func WriteDevPKI(dir string, serverHosts, callers []string) (*DevPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev pki: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dev pki: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "koppel dev CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("dev pki: CA: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &DevPKI{CA: filepath.Join(dir, "ca.pem"), Clients: map[string][2]string{}}
	if err := writePEM(p.CA, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	issue := func(name string, tmpl *x509.Certificate) ([2]string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return [2]string{}, err
		}
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = serial(), now.Add(-time.Hour), now.Add(7*24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return [2]string{}, fmt.Errorf("dev pki: %s: %w", name, err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return [2]string{}, err
		}
		files := [2]string{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")}
		if err := writePEM(files[0], "CERTIFICATE", der); err != nil {
			return [2]string{}, err
		}
		return files, writePEM(files[1], "EC PRIVATE KEY", keyDER)
	}
	srv := &x509.Certificate{Subject: pkix.Name{CommonName: "mapping"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range serverHosts {
		if ip := net.ParseIP(h); ip != nil {
			srv.IPAddresses = append(srv.IPAddresses, ip)
		} else {
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	files, err := issue("mapping", srv)
	if err != nil {
		return nil, err
	}
	p.ServerCert, p.ServerKey = files[0], files[1]
	for _, c := range callers {
		files, err := issue("client-"+c, &x509.Certificate{Subject: pkix.Name{CommonName: c}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return nil, err
		}
		p.Clients[c] = files
	}
	return p, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func writePEM(path, typ string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("dev pki: %w", err)
	}
	return nil
}
