package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The console's session is a cookie, not server state: the admin token the operator signed in
// with, sealed (AES-GCM) with the session key together with a session ID and an expiry. Every
// replica that has the key (KOPPEL_CONSOLE_SESSION_KEY) can open it, so a console behind two
// admin pods needs no sticky sessions; each request calls the admin API with the token it holds,
// so the API's own checks and audit log apply to what the console does.
const (
	sessionCookie = "koppel_session"
	signInCookie  = "koppel_signin"
	flashCookie   = "koppel_flash"
	// SessionLifetime is how long a sign-in lasts.
	SessionLifetime = 8 * time.Hour
	sessionIDSize   = 16
	sessionAAD      = "koppel console session v1"
)

// KeySize is the size of the session key.
const KeySize = 32

// ParseKey reads a session key: base64 of 32 random bytes.
func ParseKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != KeySize {
		return nil, errors.New("want base64 of 32 random bytes (openssl rand -base64 32)")
	}
	return b, nil
}

// NewKey is a random session key, for a single process that was given none.
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}

// session is a signed-in operator.
type session struct {
	id      []byte
	token   string
	expires time.Time
}

// sealer seals and opens session cookies, and makes and checks CSRF tokens.
type sealer struct {
	aead cipher.AEAD
	mac  []byte // CSRF key, derived from the session key
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, errors.New("console: the session key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("koppel console csrf"))
	return &sealer{aead: aead, mac: m.Sum(nil)}, nil
}

func (s *sealer) seal(sess session) string {
	plain := make([]byte, 8, 8+sessionIDSize+len(sess.token))
	binary.BigEndian.PutUint64(plain, uint64(sess.expires.Unix()))
	plain = append(append(plain, sess.id...), sess.token...)
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(sessionAAD)))
}

// open returns the session a cookie value holds, if it was sealed with this key and has not
// expired at now.
func (s *sealer) open(value string, now time.Time) (session, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return session{}, false
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(sessionAAD))
	if err != nil || len(plain) <= 8+sessionIDSize {
		return session{}, false
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(plain)), 0)
	if !now.Before(exp) {
		return session{}, false
	}
	return session{expires: exp, id: plain[8 : 8+sessionIDSize], token: string(plain[8+sessionIDSize:])}, true
}

// csrf is the CSRF token of a session's forms: bound to the session, useless to another.
func (s *sealer) csrf(sessionID []byte) string {
	m := hmac.New(sha256.New, s.mac)
	m.Write(sessionID)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *sealer) checkCSRF(sessionID []byte, got string) bool {
	return hmac.Equal([]byte(s.csrf(sessionID)), []byte(got))
}

func randomID() []byte {
	b := make([]byte, sessionIDSize)
	_, _ = rand.Read(b)
	return b
}

// secureCookies reports whether cookies for r must be Secure: always, except when the console is
// opened on localhost over plain HTTP (make run), where a browser would not send them back.
func secureCookies(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/console", MaxAge: int(maxAge.Seconds()), HttpOnly: true,
		Secure: secureCookies(r), SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/console", MaxAge: -1, HttpOnly: true,
		Secure: secureCookies(r), SameSite: http.SameSiteStrictMode})
}

// sameValue compares a double-submitted value in constant time.
func sameValue(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// signInLimiter refuses sign-in attempts from an address that sent too many wrong tokens: at
// most failures per window. An attempt counts from the moment it is made (try), so concurrent
// posts cannot slip past the limit, and is taken back when the token was right (succeeded).
//
// It is per client address and per process: behind a proxy every operator shares the proxy's
// address, and with several replicas an attacker gets that many tries per replica; still far too
// few to guess a 256-bit token (the admin API itself, which takes the same tokens, relies on
// their length alone). Its purpose is a clear answer to a mistyped or stale token.
type signInLimiter struct {
	mu       sync.Mutex
	failures int
	window   time.Duration
	seen     map[string]*attempts
}

type attempts struct {
	start time.Time
	n     int
}

func newSignInLimiter(failures int, window time.Duration) *signInLimiter {
	return &signInLimiter{failures: failures, window: window, seen: map[string]*attempts{}}
}

// try counts an attempt from addr and returns 0, or, when addr has used up its attempts, how
// long it must wait (and counts nothing).
func (l *signInLimiter) try(addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) > 10000 { // forget old addresses rather than grow without bound
		for k, a := range l.seen {
			if now.Sub(a.start) >= l.window {
				delete(l.seen, k)
			}
		}
	}
	a := l.seen[addr]
	if a == nil || now.Sub(a.start) >= l.window {
		a = &attempts{start: now}
		l.seen[addr] = a
	}
	if a.n >= l.failures {
		return a.start.Add(l.window).Sub(now)
	}
	a.n++
	return 0
}

// succeeded takes back addr's last attempt: it was not a wrong token.
func (l *signInLimiter) succeeded(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.seen[addr]; a != nil && a.n > 0 {
		a.n--
	}
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
