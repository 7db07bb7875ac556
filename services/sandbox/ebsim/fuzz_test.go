package ebsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzRequestDecoders sends arbitrary bodies to every write endpoint and arbitrary queries to the
// list endpoints: the simulator must answer (never panic) with a 2xx or an Error body.
func FuzzRequestDecoders(f *testing.F) {
	s := New(Options{})
	_, err := s.CreateAdministration(AdminSpec{AccessToken: "tok", Relations: 5, Products: 3})
	if err != nil {
		f.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/session", bytes.NewBufferString(`{"accessToken":"tok","source":"fuzz"}`)))
	var sess struct{ Token string }
	if err := json.Unmarshal(rec.Body.Bytes(), &sess); err != nil || sess.Token == "" {
		f.Fatalf("session: %s", rec.Body)
	}
	tok := sess.Token
	targets := []string{"POST /v1/session", "POST /v1/relation", "PATCH /v1/relation/{id}", "POST /v1/product",
		"PATCH /v1/product/{id}", "POST /v1/invoice", "POST /v1/mutation", "GET /v1/relation", "GET /v1/mutation",
		"GET /v1/invoice", "GET /v1/mutation/invoice/outstanding"}
	for i, seed := range []string{
		`{"accessToken":"tok","source":"x"}`, `{"name":"A","code":"C1","iban":"NL91ABNA0417164300","termOfPayment":"14"}`,
		`{"name":"B","inactive":1,"doNotReceiveNewsletters":true}`, `{"code":"P","description":"d","vat":"GEEN","ledgerId":1,"priceExcl":"1e400"}`,
		`{"active":false,"updateSubscriptions":2}`, `{"relationId":1,"termOfPayment":14,"templateId":1,"items":[{"quantity":1e30}]}`,
		`{"type":"3","date":"2026-01-01T10:00:00","ledgerId":1,"rows":[{"amount":-1,"vatCode":"GEEN","invoiceNumber":"X"}]}`,
		`limit=5&offset=1&name[like]=%25a%3F%25&code[not_eq]=x`, `type[range]=1,3&date[gte]=2026-01-01&id[lt]=99`,
		`invoiceNumber[like]=F%25&relationId=1&date=2026-01-01`, `credDeb=D&limit=2000&invoiceNumber=x`,
	} {
		f.Add(uint8(i), seed)
	}
	f.Fuzz(func(t *testing.T, target uint8, payload string) {
		route := targets[int(target)%len(targets)]
		method, path, _ := cut(route)
		path = replaceID(path)
		var req *http.Request
		if method == "GET" {
			req = httptest.NewRequest(method, path+"?"+url.PathEscape(payload), nil)
			req.URL.RawQuery = payload
		} else {
			req = httptest.NewRequest(method, path, bytes.NewBufferString(payload))
		}
		req.Header.Set("Authorization", tok)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", route, payload, w.Code, w.Body)
		}
	})
}

func replaceID(path string) string {
	return string(bytes.ReplaceAll([]byte(path), []byte("{id}"), []byte("22206001")))
}
