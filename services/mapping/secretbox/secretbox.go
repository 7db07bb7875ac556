// Package secretbox encrypts tenant secrets at rest with AES-256-GCM.
//
// A Keyring holds one primary key, used for every new seal, and any number of older keys kept to
// open what they sealed. Each sealed value names its key, so keys can rotate: add a new primary,
// re-seal, then retire the old key.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrUnknownKey is returned when a sealed value names a key the keyring does not have.
var ErrUnknownKey = errors.New("secretbox: sealed with a key not in the keyring")

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Keyring seals and opens secrets.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// ParseKeyring reads "id:base64key,id:base64key,..." (the first is the primary; keys are 32 bytes,
// standard base64). Errors never contain key material.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, item := range strings.Split(spec, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("key %d: want id:base64key with an id of letters, digits, _ or -", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("key %q: want 32 bytes in standard base64", id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("key %q: listed twice", id)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", id, err)
		}
		k.aeads[id] = aead
		if i == 0 {
			k.primary = id
		}
	}
	return k, nil
}

// PrimaryKeyID is the ID of the key new seals use.
func (k *Keyring) PrimaryKeyID() string { return k.primary }

// Seal encrypts plaintext bound to aad (for example tenant and secret name, so a sealed value
// cannot be moved to another tenant) and returns "keyid:base64(nonce|ciphertext)".
func (k *Keyring) Seal(plaintext, aad []byte) (string, error) {
	aead := k.aeads[k.primary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secretbox: nonce: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, plaintext, aad)
	return k.primary + ":" + base64.StdEncoding.EncodeToString(sealed), nil
}

// Open decrypts a value made by Seal with the same aad.
func (k *Keyring) Open(sealed string, aad []byte) ([]byte, error) {
	id, b64, ok := strings.Cut(sealed, ":")
	if !ok {
		return nil, errors.New("secretbox: malformed sealed value")
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, ErrUnknownKey
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, errors.New("secretbox: malformed sealed value")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], aad)
	if err != nil {
		return nil, errors.New("secretbox: cannot open sealed value (wrong key or tampered)")
	}
	return plain, nil
}

// KeyIDOf returns the key ID a sealed value names.
func KeyIDOf(sealed string) string {
	id, _, _ := strings.Cut(sealed, ":")
	return id
}
