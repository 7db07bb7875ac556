package secretbox

import (
	"bytes"
	"testing"
)

// FuzzOpen: Open takes whatever Redis holds without panicking, and opens nothing it did not
// seal: whatever the input, what opens is the one secret sealed here, with its own aad (each
// fuzzing process seals its own copy, under a nonce of its own).
func FuzzOpen(f *testing.F) {
	k, err := ParseKeyring("k2:" + key(2) + ",k1:" + key(1))
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := k.Seal([]byte("token"), []byte("acme/eb"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, []byte("acme/eb"))
	f.Add(sealed, []byte("other/eb"))
	f.Add("k1:", []byte(""))
	f.Add("k3:AAAA", []byte("x"))
	f.Add(":", []byte(nil))
	f.Add("k2:"+sealed[3:len(sealed)-2], []byte("acme/eb"))
	f.Fuzz(func(t *testing.T, s string, aad []byte) {
		got, err := k.Open(s, aad)
		if err != nil {
			return
		}
		if !bytes.Equal(aad, []byte("acme/eb")) || string(got) != "token" {
			t.Fatalf("Open(%q, %q) = %q: opened something it did not seal", s, aad, got)
		}
	})
}
