package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/koppel/koppel/pkg/mapping"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// callerServices are the services that call the mapping service.
var callerServices = []string{"admin", "gateway", "scheduler", "relation", "product", "invoice", "payment"}

// TestCallersAreWhatTheCodeCalls derives each service's needs from its code: the mapping
// methods called in the non-test files of every koppel package the service links. Its
// allow-list must be exactly that: a method missing would fail in production only (tests run
// the mapping service without authentication), a method too many is a privilege for nothing.
func TestCallersAreWhatTheCodeCalls(t *testing.T) {
	root := repoRoot(t)
	for _, s := range callerServices {
		got := slices.Sorted(slices.Values(server.Callers[s]))
		if want := methodsCalled(t, root, s); !slices.Equal(got, want) {
			t.Errorf("%s may call %q, but its code calls %q: update server.Callers", s, got, want)
		}
	}
	for c := range server.Callers {
		if c != server.OperatorCaller && !slices.Contains(callerServices, c) {
			t.Errorf("caller %q is no service", c)
		}
	}
	for _, s := range []string{"admin", "gateway", "relation", "product", "invoice", "payment"} {
		if !server.Allowed(s, "/koppel.mapping.v1.MappingService/GetSecret") {
			t.Errorf("%s may not read secrets, which it needs", s)
		}
	}
	if server.Allowed("scheduler", "/koppel.mapping.v1.MappingService/GetSecret") || server.Allowed("stranger", "/grpc.health.v1.Health/Check") {
		t.Error("the allow-list lets through what it should not")
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal(errors.New("go.work not found"))
		}
		dir = parent
	}
}

// methodsCalled lists the mapping methods called as x.Method(...) in the non-test files of the
// koppel packages (proto/ aside) that ./services/<service> depends on, sorted.
func methodsCalled(t *testing.T, root, service string) []string {
	t.Helper()
	methods := map[string]bool{}
	for _, m := range mappingv1.MappingService_ServiceDesc.Methods {
		methods[m.MethodName] = true
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \" \"}}", "./services/"+service)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", service, err, stderr.String())
	}
	found := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) < 3 || !strings.HasPrefix(parts[0], "github.com/koppel/koppel/") || strings.HasPrefix(parts[0], "github.com/koppel/koppel/proto/") {
			continue
		}
		for _, f := range strings.Fields(parts[2]) {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(parts[1], f), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok && methods[sel.Sel.Name] {
						found[sel.Sel.Name] = true
					}
				}
				return true
			})
		}
	}
	return slices.Sorted(func(yield func(string) bool) {
		for m := range found {
			if !yield(m) {
				return
			}
		}
	})
}

// TestMutualTLSIdentifiesTheCaller: with a client CA, a call needs a client certificate of that
// CA, whose Common Name is the caller and decides what it may call; with tokens as well, both
// must name the same caller.
func TestMutualTLSIdentifiesTheCaller(t *testing.T) {
	srv, _, _ := newServer(t)
	pki, err := mapping.WriteDevPKI(t.TempDir(), []string{"127.0.0.1"}, []string{"admin", "scheduler", "stranger"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := mapping.WriteDevPKI(t.TempDir(), []string{"127.0.0.1"}, []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := server.NewAuthenticator([]string{"scheduler:" + sha256Hex("scheduler-token"), "admin:" + sha256Hex("admin-token")}, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mapping.NewKeyPairFiles(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := mapping.LoadCAPool(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	tc := tlsServerConfig(kp, pool)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)), grpc.ChainUnaryInterceptor(auth.Unary))
	mappingv1.RegisterMappingServiceServer(gs, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	call := func(opts ...mapping.DialOption) (codes.Code, codes.Code) {
		c, err := mapping.Dial(ln.Addr().String(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		_, err = c.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: "acme", Name: "webhook_secret"})
		_, err2 := c.ListTenants(ctx, &mappingv1.ListTenantsRequest{})
		return status.Code(err), status.Code(err2)
	}
	files := func(p *mapping.DevPKI, caller string) mapping.TLSFiles {
		return mapping.TLSFiles{CA: pki.CA, Cert: p.Clients[caller][0], Key: p.Clients[caller][1]}
	}
	for _, c := range []struct {
		name          string
		opts          []mapping.DialOption
		secret, admin codes.Code
	}{
		// Without a certificate the handshake fails: no call gets through.
		{"no certificate", []mapping.DialOption{mapping.WithTLS(mapping.TLSFiles{CA: pki.CA}), mapping.WithToken("scheduler-token")}, codes.Unavailable, codes.Unavailable},
		{"a certificate of another CA", []mapping.DialOption{mapping.WithTLS(files(other, "admin"))}, codes.Unavailable, codes.Unavailable},
		{"admin", []mapping.DialOption{mapping.WithTLS(files(pki, "admin")), mapping.WithToken("admin-token")}, codes.NotFound, codes.OK},
		// With tokens configured as well, a certificate alone is not enough.
		{"admin without its token", []mapping.DialOption{mapping.WithTLS(files(pki, "admin"))}, codes.Unauthenticated, codes.Unauthenticated},
		{"scheduler", []mapping.DialOption{mapping.WithTLS(files(pki, "scheduler")), mapping.WithToken("scheduler-token")}, codes.PermissionDenied, codes.OK},
		{"a certificate of no caller", []mapping.DialOption{mapping.WithTLS(files(pki, "stranger")), mapping.WithToken("admin-token")}, codes.Unauthenticated, codes.Unauthenticated},
		{"token and certificate disagree", []mapping.DialOption{mapping.WithTLS(files(pki, "admin")), mapping.WithToken("scheduler-token")}, codes.Unauthenticated, codes.Unauthenticated},
	} {
		if secret, admin := call(c.opts...); secret != c.secret || admin != c.admin {
			t.Errorf("%s: GetSecret %s, ListTenants %s; want %s, %s", c.name, secret, admin, c.secret, c.admin)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func tlsServerConfig(kp *mapping.KeyPairFiles, clients *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.Certificate() }}
}
