package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBearerAuth(t *testing.T) {
	auth, err := NewBearerAuth([]string{HashToken("first"), HashToken("second")})
	if err != nil {
		t.Fatal(err)
	}
	h := auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	for header, want := range map[string]int{
		"Bearer first": 204, "Bearer second": 204, "Bearer third": 401, "first": 401, "": 401, "Bearer ": 401,
	} {
		req := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%q: got %d, want %d", header, rec.Code, want)
		}
		if want == 401 && !strings.Contains(rec.Body.String(), `"code":"unauthorized"`) {
			t.Errorf("%q: body %s", header, rec.Body)
		}
	}
	if _, err := NewBearerAuth([]string{"not-a-hash"}); err == nil {
		t.Error("a malformed hash was accepted")
	}
}

func TestDecodeJSONIsStrict(t *testing.T) {
	type req struct {
		ID string `json:"id"`
	}
	for body, want := range map[string]int{
		`{"id":"x"}`:            200,
		`{"id":"x","extra":1}`:  400,
		`{"id":"x"} {"id":"y"}`: 400,
		`{"id":`:                400,
		`{"id":"` + strings.Repeat("a", MaxRequestBytes) + `"}`: 413,
	} {
		rec := httptest.NewRecorder()
		var r req
		ok := DecodeJSON(rec, httptest.NewRequest("POST", "/", strings.NewReader(body)), &r)
		got := 200
		if !ok {
			got = rec.Code
		}
		if got != want {
			t.Errorf("body %.30q: got %d, want %d", body, got, want)
		}
	}
}
