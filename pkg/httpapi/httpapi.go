// Package httpapi holds the manners of koppel's JSON HTTP APIs: errors as JSON with a stable code,
// strict request decoding with a size limit, and bearer-token authentication against stored
// SHA-256 hashes (so a leaked configuration does not leak a usable token).
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Error is the body of every error answer: {"error":{"code":"...","message":"..."}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the request field at fault, when one is.
	Field string `json:"field,omitempty"`
}

// WriteError answers status with a JSON error.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, map[string]Error{"error": {Code: code, Message: message}})
}

// WriteFieldError answers 400 naming the field at fault.
func WriteFieldError(w http.ResponseWriter, field, message string) {
	WriteJSON(w, http.StatusBadRequest, map[string]Error{"error": {Code: "invalid_field", Message: message, Field: field}})
}

// WriteJSON answers status with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var protoJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}

// WriteProto answers status with m encoded as protobuf JSON (snake_case field names).
func WriteProto(w http.ResponseWriter, status int, m proto.Message) {
	b, err := protoJSON.Marshal(m)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "internal", "encode answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ProtoJSON encodes m the way WriteProto does, for embedding in larger answers.
func ProtoJSON(m proto.Message) json.RawMessage {
	b, err := protoJSON.Marshal(m)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// MaxRequestBytes bounds admin request bodies.
const MaxRequestBytes = 1 << 20

// DecodeJSON reads a JSON request body strictly (unknown fields are an error) into v and answers
// 400 or 413 itself when it cannot; it returns false then.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, MaxRequestBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over %d bytes", MaxRequestBytes))
			return false
		}
		WriteError(w, http.StatusBadRequest, "malformed_json", "request body: "+err.Error())
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		WriteError(w, http.StatusBadRequest, "malformed_json", "request body: more than one JSON value")
		return false
	}
	return true
}

// HashToken is the stored form of a bearer token: hex SHA-256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// BearerAuth lets a request through when its bearer token hashes to one of hashes.
type BearerAuth struct {
	hashes [][]byte
}

// NewBearerAuth takes hex SHA-256 hashes of the accepted tokens.
func NewBearerAuth(hexHashes []string) (*BearerAuth, error) {
	a := &BearerAuth{}
	for i, h := range hexHashes {
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("token hash %d: want 64 hex characters (sha256 of the token)", i+1)
		}
		a.hashes = append(a.hashes, b)
	}
	return a, nil
}

// Wrap protects next. The request's context names the token it was let in with (TokenIDOf).
func (a *BearerAuth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || !a.accepts(token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="koppel"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		if id, ok := r.Context().Value(tokenIDKey{}).(*string); ok {
			*id = TokenID(token)
		}
		next.ServeHTTP(w, r)
	})
}

// TokenID is how logs name a token: the first 12 hex characters of its SHA-256, enough to tell
// an operator's tokens apart (and to find it among KOPPEL_ADMIN_TOKEN_HASHES), useless to anyone
// who reads the log.
func TokenID(token string) string { return HashToken(token)[:12] }

type tokenIDKey struct{}

// WithTokenID returns a context in which Wrap records the ID of the token it lets a request in
// with, read back by TokenIDOf once the handler is done: an audit log around the handlers.
func WithTokenID(ctx context.Context) context.Context {
	return context.WithValue(ctx, tokenIDKey{}, new(string))
}

// TokenIDOf is the ID of the token a request was let in with (see WithTokenID), "" when none.
func TokenIDOf(ctx context.Context) string {
	if id, ok := ctx.Value(tokenIDKey{}).(*string); ok {
		return *id
	}
	return ""
}

func (a *BearerAuth) accepts(token string) bool {
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for _, h := range a.hashes {
		ok |= subtle.ConstantTimeCompare(sum[:], h)
	}
	return ok == 1
}
