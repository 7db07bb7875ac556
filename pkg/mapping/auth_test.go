package mapping

import (
	"os"
	"testing"
	"time"
)

// TestKeyPairFilesFollowARenewal: a certificate renewed in place (as cert-manager does) is used
// from the next handshake on; a pair caught half-written keeps the last good one.
func TestKeyPairFilesFollowARenewal(t *testing.T) {
	dir := t.TempDir()
	first, err := WriteDevPKI(dir+"/a", []string{"127.0.0.1"}, []string{"gateway"})
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := WriteDevPKI(dir+"/b", []string{"127.0.0.1"}, []string{"gateway"})
	if err != nil {
		t.Fatal(err)
	}
	cert, key := dir+"/cert.pem", dir+"/key.pem"
	install := func(p *DevPKI, when time.Time) {
		for src, dst := range map[string]string{p.Clients["gateway"][0]: cert, p.Clients["gateway"][1]: key} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(dst, when, when); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := time.Now()
	install(first, now.Add(-time.Hour))
	kp, err := NewKeyPairFiles(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := kp.Certificate()
	install(renewed, now)
	c2, err := kp.Certificate()
	if err != nil || string(c2.Certificate[0]) == string(c1.Certificate[0]) {
		t.Fatalf("the renewed certificate was not picked up: %v", err)
	}
	if err := os.WriteFile(cert, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(cert, now.Add(time.Minute), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c3, err := kp.Certificate()
	if err != nil || string(c3.Certificate[0]) != string(c2.Certificate[0]) {
		t.Fatalf("a half-written pair replaced the good one: %v", err)
	}
}
