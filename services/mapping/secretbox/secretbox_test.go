package secretbox

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func key(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func TestSealOpenAndRotate(t *testing.T) {
	old, err := ParseKeyring("k1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := old.Seal([]byte("token"), []byte("acme/eb"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "token") || KeyIDOf(sealed) != "k1" {
		t.Fatalf("sealed = %q", sealed)
	}
	rotated, err := ParseKeyring("k2:" + key(2) + ",k1:" + key(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := rotated.Open(sealed, []byte("acme/eb"))
	if err != nil || string(got) != "token" {
		t.Fatalf("open after rotation: %q %v", got, err)
	}
	resealed, _ := rotated.Seal(got, []byte("acme/eb"))
	if KeyIDOf(resealed) != "k2" {
		t.Fatalf("new seals must use the primary key, got %s", KeyIDOf(resealed))
	}
	if _, err := rotated.Open(sealed, []byte("other/eb")); err == nil {
		t.Fatal("opened with the wrong aad")
	}
	if _, err := old.Open(resealed, []byte("acme/eb")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("want ErrUnknownKey, got %v", err)
	}
}

func TestParseKeyringErrorsHideKeys(t *testing.T) {
	for _, spec := range []string{"", "k1", "k1:notbase64!", "k1:" + base64.StdEncoding.EncodeToString([]byte("short")), "k1:" + key(1) + ",k1:" + key(2), "bad id:" + key(1)} {
		_, err := ParseKeyring(spec)
		if err == nil {
			t.Errorf("spec %q accepted", spec)
			continue
		}
		if strings.Contains(err.Error(), key(1)) {
			t.Errorf("error leaks key: %v", err)
		}
	}
}
