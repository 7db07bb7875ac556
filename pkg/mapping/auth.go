package mapping

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// The mapping service authenticates every call (services/mapping/server, auth.go): a caller
// shows a token of its own in the "authorization" metadata, or a client certificate whose
// Common Name is the calling service, or both; each service may call only the methods it needs.

// TokenHeader is the metadata key that carries a caller's token, as "Bearer <token>".
const TokenHeader = "authorization"

// DialOption configures Dial.
type DialOption func(*dialConfig) error

type dialConfig struct {
	token string
	tls   *tls.Config
}

// WithToken sends token with every call. Empty means none.
func WithToken(token string) DialOption {
	return func(c *dialConfig) error { c.token = token; return nil }
}

// TLSFiles name the PEM files of a TLS connection to the mapping service. Certificates are read
// again when their file changes (cert-manager renews them in place), the CA bundle at start.
type TLSFiles struct {
	// CA verifies the mapping service's certificate. Required for TLS.
	CA string
	// Cert and Key are this service's client certificate (mTLS): its Common Name is the service's
	// name. Empty: no client certificate.
	Cert, Key string
	// ServerName is the name the server's certificate must carry. Default: the host of the
	// address dialled.
	ServerName string
}

// WithTLS dials over TLS with the files of f; without it the connection is plaintext (inside
// a mesh that encrypts it, say).
func WithTLS(f TLSFiles) DialOption {
	return func(c *dialConfig) error {
		pool, err := LoadCAPool(f.CA)
		if err != nil {
			return err
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: f.ServerName}
		if f.Cert != "" || f.Key != "" {
			kp, err := NewKeyPairFiles(f.Cert, f.Key)
			if err != nil {
				return err
			}
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.Certificate() }
		}
		c.tls = cfg
		return nil
	}
}

// tokenCredentials puts the caller's token on every call.
type tokenCredentials struct {
	token  string
	secure bool
}

func (t tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{TokenHeader: "Bearer " + t.token}, nil
}

// RequireTransportSecurity is true over TLS; without TLS the token still goes, for the network
// (a NetworkPolicy, a mesh's mTLS) to protect.
func (t tokenCredentials) RequireTransportSecurity() bool { return t.secure }

func (c *dialConfig) grpcOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if c.tls != nil {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(c.tls)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCredentials{token: c.token, secure: c.tls != nil}))
	}
	return opts
}

// LoadCAPool reads a PEM bundle of CA certificates.
func LoadCAPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, errors.New("tls: a CA bundle is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// KeyPairFiles is a certificate and key read from files, read again when either file changes,
// so a renewed certificate is used from the next handshake on without a restart.
type KeyPairFiles struct {
	cert, key string

	mu      sync.Mutex
	pair    *tls.Certificate
	modTime time.Time
}

// NewKeyPairFiles reads the pair once, failing when it cannot.
func NewKeyPairFiles(cert, key string) (*KeyPairFiles, error) {
	if cert == "" || key == "" {
		return nil, errors.New("tls: a certificate needs both its file and its key's")
	}
	k := &KeyPairFiles{cert: cert, key: key}
	if _, err := k.Certificate(); err != nil {
		return nil, err
	}
	return k, nil
}

// Certificate returns the current pair, reading the files again when they changed. When a new
// pair cannot be read (caught half-written), the last good one is used.
func (k *KeyPairFiles) Certificate() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	mod := latestModTime(k.cert, k.key)
	if k.pair != nil && !mod.After(k.modTime) {
		return k.pair, nil
	}
	pair, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.pair != nil {
			return k.pair, nil
		}
		return nil, fmt.Errorf("tls: load key pair: %w", err)
	}
	k.pair, k.modTime = &pair, mod
	return k.pair, nil
}

func latestModTime(paths ...string) time.Time {
	var latest time.Time
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest
}
