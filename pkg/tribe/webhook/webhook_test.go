package webhook

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

const sample = `{"webhookId":"w1","payload":{"type":"EntityUpdateMutation","entityId":"B724D383-BB70-480A-B03D-512B9AAEC15A","entityType":"Relation.Organization","timestamp":"2025-03-01T10:00:00.5Z","mutationId":"m-1"}}`

func TestVerifyDocumentedConstruction(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(sample)
	mac := hmac.New(sha512.New, secret)
	mac.Write(body)
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if err := Verify(secret, body, sig, Options{}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := Verify(secret, body, "sha512="+sig, Options{}); err != nil {
		t.Fatalf("Verify with prefix: %v", err)
	}
	if err := Verify(secret, body, strings.TrimRight(sig, "="), Options{}); err != nil {
		t.Fatalf("Verify unpadded: %v", err)
	}
	for name, c := range map[string]struct {
		secret []byte
		body   []byte
		sig    string
		want   error
	}{
		"tampered body": {secret, append([]byte(sample), ' '), sig, ErrBadSignature},
		"wrong secret":  {[]byte("other"), body, sig, ErrBadSignature},
		"missing":       {secret, body, " ", ErrMissingSignature},
		"garbage":       {secret, body, "!!!", ErrBadSignature},
		"no secret":     {nil, body, sig, ErrNoSecret},
		"hex instead":   {secret, body, "abcd", ErrBadSignature},
	} {
		err := Verify(c.secret, c.body, c.sig, Options{})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error leaks the secret", name)
		}
	}
}

func TestVerifierVariants(t *testing.T) {
	for _, o := range []Options{
		{Algorithm: SHA256}, {Encoding: Hex}, {Algorithm: SHA256, Encoding: Hex, HeaderName: "X-Signature"},
	} {
		v, err := NewVerifier(o)
		if err != nil {
			t.Fatal(err)
		}
		sig := v.Sign([]byte("k"), []byte(sample))
		if err := v.Verify([]byte("k"), []byte(sample), sig); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
		// A signature under the default options must not pass a differently configured verifier.
		def, _ := NewVerifier(Options{})
		if err := v.Verify([]byte("k"), []byte(sample), def.Sign([]byte("k"), []byte(sample))); err == nil {
			t.Errorf("%+v accepted a default signature", o)
		}
	}
	if _, err := NewVerifier(Options{Algorithm: "md5"}); err == nil {
		t.Error("md5 accepted")
	}
	// sha512(secret ‖ body) can be extended by anyone who saw one signature: not offered.
	if _, err := NewVerifier(Options{Construction: "concat"}); err == nil {
		t.Error("the plain hash of secret and body accepted as a construction")
	}
}

func TestDecode(t *testing.T) {
	evs, err := Decode([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{WebhookID: "w1", Mutation: "EntityUpdateMutation", Kind: KindEntity, Action: ActionUpdate,
		EntityID: "b724d383-bb70-480a-b03d-512b9aaec15a", EntityType: "Relation.Organization",
		Timestamp: time.Date(2025, 3, 1, 10, 0, 0, 5e8, time.UTC), EventID: "m-1"}
	if len(evs) != 1 || evs[0] != want {
		t.Fatalf("got %+v\nwant %+v", evs, want)
	}
	if evs[0].Key() != "tribe-evt-m-1" {
		t.Errorf("key %q", evs[0].Key())
	}

	minimal := `[{"webhookId":"w2","payload":{"mutationType":"RelationshipCreationMutation","relationshipId":"b724d383-bb70-480a-b03d-512b9aaec15a"}},
	{"webhookId":"w2","payload":{"@type":"EntityDeletionMutation","entityId":"b724d383-bb70-480a-b03d-512b9aaec15b"}}]`
	evs, err = Decode([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Kind != KindRelationship || evs[0].Action != ActionCreate || evs[1].Action != ActionDelete {
		t.Fatalf("got %+v", evs)
	}
	again, _ := Decode([]byte(minimal))
	if evs[0].Key() == evs[1].Key() || again[0].Key() != evs[0].Key() {
		t.Error("keys are not distinct and stable")
	}
	if _, err := DecodeWith([]byte(minimal), DecodeOptions{TypeKey: "type"}); err == nil {
		t.Error("TypeKey not enforced")
	}

	for name, body := range map[string]string{
		"empty":          ``,
		"not json":       `{`,
		"trailing":       sample + `{}`,
		"array of junk":  `[1]`,
		"empty batch":    `[]`,
		"no payload":     `{"webhookId":"w"}`,
		"no webhook id":  `{"payload":{"type":"EntityUpdateMutation","entityId":"b724d383-bb70-480a-b03d-512b9aaec15a"}}`,
		"no type":        `{"webhookId":"w","payload":{"entityId":"b724d383-bb70-480a-b03d-512b9aaec15a"}}`,
		"two types":      `{"webhookId":"w","payload":{"a":"EntityUpdateMutation","b":"EntityDeletionMutation","entityId":"b724d383-bb70-480a-b03d-512b9aaec15a"}}`,
		"bad id":         `{"webhookId":"w","payload":{"type":"EntityUpdateMutation","entityId":"42"}}`,
		"no id":          `{"webhookId":"w","payload":{"type":"EntityUpdateMutation"}}`,
		"bad timestamp":  `{"webhookId":"w","payload":{"type":"EntityUpdateMutation","entityId":"b724d383-bb70-480a-b03d-512b9aaec15a","timestamp":"yesterday"}}`,
		"number type":    `{"webhookId":"w","payload":{"type":"EntityUpdateMutation","entityId":"b724d383-bb70-480a-b03d-512b9aaec15a","entityType":5}}`,
		"payload array":  `{"webhookId":"w","payload":[]}`,
		"webhook id int": `{"webhookId":1,"payload":{}}`,
	} {
		if _, err := Decode([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	if _, err := Decode(make([]byte, MaxBodySize+1)); !errors.Is(err, ErrMalformed) {
		t.Error("oversized body accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`[{"webhookId":"w","payload":{"x":"RelationshipUpdateMutation","relationshipId":"b724d383-bb70-480a-b03d-512b9aaec15a"}}]`))
	f.Add([]byte(`{"webhookId":"w","payload":{"type":"EntityUpdateMutation","entityId":"b724d383-bb70-480a-b03d-512b9aaec15a","timestamp":null}}`))
	f.Add([]byte(`[[[[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		for _, e := range evs {
			if e.EntityID == "" || e.Action == "" || e.Kind == "" || e.Key() == "" {
				t.Fatalf("incomplete event %+v", e)
			}
		}
	})
}

func FuzzVerify(f *testing.F) {
	v, _ := NewVerifier(Options{})
	f.Add([]byte("k"), []byte(sample), v.Sign([]byte("k"), []byte(sample)))
	f.Add([]byte("k"), []byte(""), "")
	f.Add([]byte(""), []byte("x"), "sha512=AAAA")
	f.Fuzz(func(t *testing.T, secret, body []byte, sig string) {
		err := v.Verify(secret, body, sig)
		if err == nil && (len(secret) == 0 || v.Sign(secret, body) != strings.TrimPrefix(strings.TrimSpace(sig), "sha512=") &&
			strings.TrimRight(v.Sign(secret, body), "=") != strings.TrimRight(strings.TrimPrefix(strings.TrimSpace(sig), "sha512="), "=")) {
			// Accepted signatures must be (an encoding variant of) the true one.
			got, ok := v.decode(strings.TrimPrefix(strings.TrimSpace(sig), "sha512="))
			if !ok || !hmac.Equal(got, v.digest(secret, body)) {
				t.Fatalf("accepted a wrong signature")
			}
		}
	})
}

// TestTrailingGarbageIsMalformed: a body with anything after its JSON value is refused, a
// malformed token included (FuzzPeekWebhookID found the decoder taking `{…}A0`).
func TestTrailingGarbageIsMalformed(t *testing.T) {
	for _, tail := range []string{"A0", "}", " {}", "\x00", "[1]"} {
		if _, err := Decode([]byte(sample + tail)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q after the envelope: %v, want ErrMalformed", tail, err)
		}
	}
}
