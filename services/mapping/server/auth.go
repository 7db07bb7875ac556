package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Callers are the services that call the mapping service, each with the methods it may call:
// exactly the methods the code it links calls (TestCallersAreWhatTheCodeCalls derives them
// from the source, per package). Only the admin service, the gateway and the workers read
// secrets (GetSecret), which hold the tenants' API credentials and webhook secrets. The health
// service is open to every caller.
//
// OperatorCaller may call every method: for an operator with grpcurl, and the local stack's
// tests. Give it a token only where someone needs it.
var Callers = map[string][]string{
	// The admin service: tenants, credentials (it logs in with them, so it reads secrets),
	// activation, status, invoice pushes, dead letters. A rebuild is a run of the relation
	// service, so the admin service writes no links.
	"admin": {"AcquireLease", "CreateTenant", "GetLink", "GetSecret", "GetTenant", "ListHistory", "ListIssues", "ListRuns", "ListTenants",
		"PutSecret", "RecordIssue", "ReleaseLease", "ResealSecrets", "ResolveIssue", "SetTenantState", "UpdateTenantSettings"},
	// The gateway, the public edge, reads a tenant's webhook registrations and secrets only (it
	// links the lease helper and the issue recorder without using them).
	"gateway": {"AcquireLease", "GetSecret", "GetTenant", "RecordIssue", "ReleaseLease"},
	// The scheduler links the lease helper and the consume loop's issue recorder without
	// using them: the derivation is per package.
	"scheduler": {"AcquireLease", "GetCursor", "ListTenants", "RecordIssue", "ReleaseLease", "SetCursor"},
	"relation": {"AcquireLease", "BatchGetLinks", "CreateLink", "DeleteLink", "FinishRun", "GetCursor", "GetLink", "GetSecret", "GetTenant",
		"ListIssues", "NextNumber", "RaiseNumber", "RecordHistory", "RecordIssue", "ReleaseLease", "ResolveIssue", "SaveSyncedRecord",
		"SetCursor", "StartRun", "UpdateRun"},
	"product": {"AcquireLease", "BatchGetLinks", "CreateLink", "FinishRun", "GetCursor", "GetSecret", "GetTenant", "RecordHistory",
		"RecordIssue", "ReleaseLease", "ResolveIssue", "SaveSyncedRecord", "SetCursor", "StartRun", "UpdateRun"},
	"invoice": {"AcquireLease", "CreateLink", "FinishRun", "GetCursor", "GetLink", "GetSecret", "GetTenant", "ListIssues", "RecordHistory",
		"RecordIssue", "ReleaseLease", "ResolveIssue", "SetCursor", "StartRun", "UpdateRun"},
	"payment": {"AcquireLease", "BatchGetLinks", "FinishRun", "GetCursor", "GetSecret", "GetTenant", "RecordHistory", "RecordIssue",
		"ReleaseLease", "SaveSyncedRecord", "SetCursor", "StartRun", "UpdateRun"},
	OperatorCaller: nil,
}

// OperatorCaller is the caller allowed every method.
const OperatorCaller = "operator"

const (
	servicePrefix = "/koppel.mapping.v1.MappingService/"
	healthPrefix  = "/grpc.health.v1.Health/"
)

// Allowed reports whether caller may call fullMethod ("/koppel.mapping.v1.MappingService/GetSecret").
func Allowed(caller, fullMethod string) bool {
	methods, known := Callers[caller]
	if !known {
		return false
	}
	if strings.HasPrefix(fullMethod, healthPrefix) {
		return true
	}
	name, ok := strings.CutPrefix(fullMethod, servicePrefix)
	if !ok {
		return false
	}
	return caller == OperatorCaller || slices.Contains(methods, name)
}

var authRefusals = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "koppel_mapping_auth_refusals_total",
	Help: "Mapping API calls refused: unauthenticated (no or an unknown token or certificate) or permission_denied (a method outside the caller's allow-list).",
}, []string{"reason"})

// Authenticator identifies the caller of every call, by token, client certificate or both,
// and lets it through only to the methods of its allow-list (Callers).
type Authenticator struct {
	// tokens maps the SHA-256 of each token to its caller.
	tokens      map[[sha256.Size]byte]string
	requireCert bool
	log         *slog.Logger
}

// NewAuthenticator returns an Authenticator. tokenHashes are "caller:hex(sha256(token))"
// (a caller may have several, for rotation); with requireCert every call needs a verified
// client certificate whose Common Name is a caller. With both, a call needs both, naming the
// same caller. With neither it refuses to be built: an open mapping API hands out secrets.
func NewAuthenticator(tokenHashes []string, requireCert bool, log *slog.Logger) (*Authenticator, error) {
	a := &Authenticator{tokens: map[[sha256.Size]byte]string{}, requireCert: requireCert, log: log}
	for _, entry := range tokenHashes {
		caller, h, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			return nil, fmt.Errorf("token hash %q: want caller:sha256-hex", entry)
		}
		if _, known := Callers[caller]; !known {
			return nil, fmt.Errorf("token hash for %q: not a caller (want one of %s)", caller, strings.Join(callerNames(), ", "))
		}
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("token hash for %s: want 64 hex digits of a SHA-256", caller)
		}
		a.tokens[[sha256.Size]byte(b)] = caller
	}
	if len(a.tokens) == 0 && !requireCert {
		return nil, fmt.Errorf("no caller authentication: set token hashes, a client CA, or both")
	}
	return a, nil
}

func callerNames() []string {
	var names []string
	for c := range Callers {
		names = append(names, c)
	}
	slices.Sort(names)
	return names
}

// identify returns the caller of a call, or an Unauthenticated error that says what is missing
// without saying what was expected.
func (a *Authenticator) identify(ctx context.Context) (string, error) {
	var byToken, byCert string
	if len(a.tokens) > 0 {
		md, _ := metadata.FromIncomingContext(ctx)
		vals := md.Get("authorization")
		if len(vals) != 1 {
			return "", status.Error(codes.Unauthenticated, "a caller token is required")
		}
		tok, ok := strings.CutPrefix(vals[0], "Bearer ")
		// Looked up by its hash, so the look-up's timing tells nothing of the token.
		caller, known := a.tokens[sha256.Sum256([]byte(tok))]
		if !ok || !known {
			return "", status.Error(codes.Unauthenticated, "unknown caller token")
		}
		byToken = caller
	}
	if a.requireCert {
		p, _ := peer.FromContext(ctx)
		ti, ok := p.AuthInfo.(credentials.TLSInfo)
		if p == nil || !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
			return "", status.Error(codes.Unauthenticated, "a verified client certificate is required")
		}
		byCert = ti.State.VerifiedChains[0][0].Subject.CommonName
		if _, known := Callers[byCert]; !known {
			return "", status.Error(codes.Unauthenticated, "the client certificate names no caller")
		}
	}
	if byToken != "" && byCert != "" && byToken != byCert {
		return "", status.Error(codes.Unauthenticated, "token and certificate name different callers")
	}
	if byToken != "" {
		return byToken, nil
	}
	return byCert, nil
}

func (a *Authenticator) authorize(ctx context.Context, method string) error {
	caller, err := a.identify(ctx)
	if err != nil {
		authRefusals.WithLabelValues("unauthenticated").Inc()
		a.log.WarnContext(ctx, "mapping call refused", "method", method, "reason", status.Convert(err).Message(), "peer", peerAddr(ctx))
		return err
	}
	if !Allowed(caller, method) {
		authRefusals.WithLabelValues("permission_denied").Inc()
		a.log.WarnContext(ctx, "mapping call refused", "method", method, "caller", caller, "reason", "not on the caller's allow-list", "peer", peerAddr(ctx))
		return status.Errorf(codes.PermissionDenied, "%s may not call %s", caller, method)
	}
	return nil
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// Unary is the unary server interceptor.
func (a *Authenticator) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is the stream server interceptor (the health service's Watch).
func (a *Authenticator) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}
