package config

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Redacted stands in for the user information of a URL in errors and logs.
const Redacted = "REDACTED"

// RedactURL returns raw with the user information of every URL in it (user name and password)
// replaced by Redacted, for errors and logs. raw may be a comma-separated list (KOPPEL_NATS_URL)
// and need not parse: a malformed URL is exactly the one that ends up in an error message.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = redactOne(p)
	}
	return strings.Join(parts, ",")
}

func redactOne(raw string) string {
	if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.Host != "" {
		if u.User == nil {
			return raw
		}
		u.User = url.User(Redacted)
		return u.String()
	}
	// Not a URL that parses: cut whatever stands between the scheme and the last '@' before
	// the path, whatever characters it holds.
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	authority := rest
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		return prefix + Redacted + rest[at:]
	}
	return raw
}

// RedactError returns err with the credentials of raw (the URL as given, quoted or not, its
// user information, its password) removed from its message, for the error of parsing or
// dialling a URL that may carry a password. errors.Is and errors.As still see err.
func RedactError(err error, raw string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secretsOf(raw) {
		msg = strings.ReplaceAll(msg, s, Redacted)
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// secretsOf lists the forms in which raw's credentials may appear in an error, longest first,
// so that a whole URL is replaced before its parts.
func secretsOf(raw string) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 3 {
			out = append(out, s)
		}
	}
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "@") {
			continue
		}
		add(p)
		if q := strconv.Quote(p); q != `"`+p+`"` {
			add(q[1 : len(q)-1])
		}
		rest := p
		if i := strings.Index(p, "://"); i >= 0 {
			rest = p[i+3:]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			userinfo := rest[:at]
			add(userinfo)
			if _, pass, ok := strings.Cut(userinfo, ":"); ok {
				add(pass)
				if unescaped, err := url.PathUnescape(pass); err == nil {
					add(unescaped)
				}
			}
		}
	}
	// Longest first: a password is part of the URL, not the other way round.
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Unwrap keeps errors.Is and errors.As working; printing err itself is what would leak.
func (e *redactedError) Unwrap() error { return e.err }
