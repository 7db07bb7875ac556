package config

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestURLCredentialsNeverInErrors: a malformed URL setting is named in the error, its
// password never.
func TestURLCredentialsNeverInErrors(t *testing.T) {
	type withURL struct {
		Upstream *url.URL `env:"T_UPSTREAM"`
	}
	for _, raw := range []string{"://:hunter2@redis:6379/0", "redis://:hunter2@bad host/0", "h:hunter2@", "//u:hunter2@/x"} {
		var c withURL
		err := Load(&c, func(string) (string, bool) { return raw, true })
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error %q shows the password", raw, err)
		}
		if !strings.Contains(err.Error(), "T_UPSTREAM") {
			t.Errorf("%q: error %q does not name the variable", raw, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://:hunter2@redis:6379/0":                    "redis://REDACTED@redis:6379/0",
		"redis://redis:6379/0":                             "redis://redis:6379/0",
		"redis://:hunter2@bad host:6379/0":                 "redis://REDACTED@bad host:6379/0",
		"redis://u:pa/ss@word@host/0":                      "redis://REDACTED@host/0",
		"nats://a:one@n1:4222,nats://b:two@n2:4222":        "nats://REDACTED@n1:4222,nats://REDACTED@n2:4222",
		"nats://n1:4222,nats://u:pw%zz@n2:4222":            "nats://n1:4222,nats://REDACTED@n2:4222",
		"user:secret@host:4222":                            "REDACTED@host:4222",
		"https://api.example/v1?next=a@b":                  "https://api.example/v1?next=a@b",
		"rediss://default:s3cr3t@cache.example:6380/2?x=1": "rediss://REDACTED@cache.example:6380/2?x=1",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestRedactError(t *testing.T) {
	raw := "redis://u:hun ter%zz@host/0"
	//lint:ignore SA1007 the URL is malformed on purpose: its parse error is what is redacted
	_, perr := url.Parse(raw)
	err := RedactError(perr, raw)
	for _, leak := range []string{"hun ter", "u:hun", "%zz"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("%q shows %q", err, leak)
		}
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Error("the redacted error lost its type")
	}
	plain := errors.New("connection refused")
	if RedactError(plain, raw) != plain {
		t.Error("an error without credentials was changed")
	}
}
