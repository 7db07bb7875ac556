package apicall

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newCaller(t *testing.T, reg prometheus.Registerer, opts ...Option) *Caller {
	t.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	opts = append([]Option{WithRegisterer(reg), WithBackoff(time.Millisecond, 5*time.Millisecond), WithRandSeed(1)}, opts...)
	c, err := New("eboekhouden", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetriesServerErrorsAndReplaysBody(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != `{"name":"x"}` {
			t.Errorf("attempt %d got body %q", calls.Load()+1, b)
		}
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte(`ok`))
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	c := newCaller(t, reg)
	resp, err := c.Do(context.Background(), &Request{Method: http.MethodPost, URL: srv.URL + "/v1/relation", Endpoint: "POST /v1/relation", Body: []byte(`{"name":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Attempts != 3 || string(resp.Body) != "ok" {
		t.Fatalf("got %d after %d attempts: %q", resp.StatusCode, resp.Attempts, resp.Body)
	}
	if got := testutil.ToFloat64(c.metrics.retries.WithLabelValues("eboekhouden", "POST /v1/relation")); got != 2 {
		t.Errorf("retries metric = %v, want 2", got)
	}
	if got := testutil.ToFloat64(c.metrics.requests.WithLabelValues("eboekhouden", "POST /v1/relation", "502")); got != 2 {
		t.Errorf("requests{502} = %v, want 2", got)
	}
}

func TestGivesUpAfterMaxAttemptsAndReturnsLastAnswer(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := newCaller(t, nil, WithMaxAttempts(3))
	resp, err := c.Do(context.Background(), &Request{URL: srv.URL + "/v1/unit"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || calls.Load() != 3 {
		t.Fatalf("status %d after %d calls", resp.StatusCode, calls.Load())
	}
}

func TestDoesNotRetryClientErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	resp, err := newCaller(t, nil).Do(context.Background(), &Request{URL: srv.URL})
	if err != nil || resp.StatusCode != 400 || calls.Load() != 1 {
		t.Fatalf("resp %+v err %v calls %d", resp, err, calls.Load())
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	var calls atomic.Int32
	var first time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if d := time.Since(first); d < 900*time.Millisecond {
			t.Errorf("retried after %v, before Retry-After", d)
		}
	}))
	defer srv.Close()
	lim := NewAdaptiveLimiter(1000, 1000)
	c := newCaller(t, nil, WithLimiter(lim))
	resp, err := c.Do(context.Background(), &Request{URL: srv.URL, Tenant: "t1"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	if r := lim.Rate("t1"); r >= 1000 {
		t.Errorf("rate after 429 = %v, want halved", r)
	}
	if got := testutil.ToFloat64(c.metrics.rateWait.WithLabelValues("eboekhouden")); got < 0.9 {
		t.Errorf("rate wait metric = %v, want >= 0.9", got)
	}
}

func TestLongRetryAfterEndsTheCall(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	resp, err := newCaller(t, nil).Do(context.Background(), &Request{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || !resp.HasRetryAfter || resp.RetryAfter != 120*time.Second || calls.Load() != 1 {
		t.Fatalf("resp %+v calls %d", resp, calls.Load())
	}
}

func dropping(t *testing.T, okAfter int32) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= okAfter {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRetriesNetworkErrorsOnlyWhenIdempotent(t *testing.T) {
	srv, calls := dropping(t, 1)
	c := newCaller(t, nil)
	resp, err := c.Do(context.Background(), &Request{URL: srv.URL})
	if err != nil || resp.StatusCode != 200 || calls.Load() != 2 {
		t.Fatalf("GET: resp %+v err %v calls %d", resp, err, calls.Load())
	}

	srv2, calls2 := dropping(t, 1)
	_, err = c.Do(context.Background(), &Request{Method: http.MethodPost, URL: srv2.URL + "/v1/x?secret=abc", Endpoint: "POST /v1/x", Body: []byte("{}")})
	if err == nil || !errors.Is(err, ErrTransport) || !IsTransient(err) || calls2.Load() != 1 {
		t.Fatalf("POST: err %v calls %d", err, calls2.Load())
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), srv2.URL) {
		t.Errorf("error leaks the URL: %v", err)
	}

	srv3, calls3 := dropping(t, 1)
	resp, err = c.Do(context.Background(), &Request{Method: http.MethodPost, URL: srv3.URL, Body: []byte("{}"), Idempotent: true})
	if err != nil || resp.StatusCode != 200 || calls3.Load() != 2 {
		t.Fatalf("idempotent POST: resp %+v err %v calls %d", resp, err, calls3.Load())
	}
}

func TestTimeoutPerAttempt(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	defer close(release)
	c := newCaller(t, nil, WithTimeout(50*time.Millisecond))
	resp, err := c.Do(context.Background(), &Request{URL: srv.URL})
	if err != nil || resp.StatusCode != 200 || resp.Attempts != 2 {
		t.Fatalf("resp %+v err %v", resp, err)
	}
}

func TestContextCancelStopsRetrying(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, err := newCaller(t, nil).Do(ctx, &Request{URL: srv.URL})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestMetricsShareRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newCaller(t, reg)
	b, err := New("tribe", WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	if a.metrics.requests != b.metrics.requests {
		t.Error("second caller did not reuse the registered collectors")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999", 365 * 24 * time.Hour, true},
	}
	for _, c := range cases {
		got, ok := ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "-5", "1e9", "9223372036854775807"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

func TestAdaptiveLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	l := NewAdaptiveLimiter(10, 2, WithClock(clock), WithRecovery(10*time.Second), WithMinRate(1))
	ctx := context.Background()
	for range 2 {
		if w, err := l.Wait(ctx, "a"); w != 0 || err != nil {
			t.Fatalf("burst token waited %v, %v", w, err)
		}
	}
	l.Throttled("a")
	if r := l.Rate("a"); r != 5 {
		t.Fatalf("rate after 429 = %v, want 5", r)
	}
	l.Throttled("a") // same overload, ignored
	if r := l.Rate("a"); r != 5 {
		t.Fatalf("rate after second 429 within interval = %v, want 5", r)
	}
	now = now.Add(time.Second)
	l.Throttled("a")
	if r := l.Rate("a"); r != 3 { // recovered by 1/s to 6, then halved
		t.Fatalf("rate = %v, want 3", r)
	}
	now = now.Add(5 * time.Second)
	if r := l.Rate("a"); r != 8 {
		t.Fatalf("rate after 5 s recovery = %v, want 8", r)
	}
	now = now.Add(time.Minute)
	if r := l.Rate("a"); r != 10 {
		t.Fatalf("rate capped = %v, want 10", r)
	}
	if r := l.Rate("b"); r != 10 {
		t.Fatalf("other tenant's rate = %v, want 10", r)
	}
}

func TestAdaptiveLimiterWaitsAndCancels(t *testing.T) {
	l := NewAdaptiveLimiter(100, 1)
	ctx := context.Background()
	if _, err := l.Wait(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	w, err := l.Wait(ctx, "a")
	if err != nil || w <= 0 {
		t.Fatalf("second token: waited %v, %v", w, err)
	}
	slow := NewAdaptiveLimiter(0.01, 1)
	_, _ = slow.Wait(ctx, "a")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := slow.Wait(cctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// A call that would wait longer than its context allows for the tenant's budget fails at once
// with the predicted wait, takes no token, and leaves other tenants alone.
func TestBudgetWaitIsHandedBack(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewAdaptiveLimiter(2, 1, WithClock(func() time.Time { return now }))
	ctx := WithMaxBudgetWait(context.Background(), time.Second)
	if _, err := l.Wait(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	// Three more queue up behind without the limit (an import holding on).
	for range 3 {
		go func() { _, _ = l.Wait(context.Background(), "busy") }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := l.Wait(ctx, "busy")
		var be *BudgetError
		if errors.As(err, &be) {
			if be.Wait <= time.Second || be.Wait > 3*time.Second {
				t.Fatalf("predicted wait %v, want just over 1 s to 2 s", be.Wait)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the limiter never handed back a call over budget")
		}
	}
	if w, err := l.Wait(ctx, "quiet"); w != 0 || err != nil {
		t.Fatalf("another tenant waited %v, %v", w, err)
	}
	c, err := New("test", WithLimiter(l), WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(ctx, &Request{URL: "http://127.0.0.1:1/", Tenant: "busy"})
	var be *BudgetError
	if !errors.As(err, &be) {
		t.Fatalf("Do over budget: %v", err)
	}
}

// A background caller (a run) never reserves ahead of a live one: a token that comes free is
// the live caller's when it asked for it, and the run gets the next.
func TestBackgroundCallsYieldToLiveOnes(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewAdaptiveLimiter(20, 1, WithClock(func() time.Time { return now }))
	ctx := context.Background()
	if _, err := l.Wait(ctx, "t"); err != nil { // the bucket is empty now
		t.Fatal(err)
	}
	if _, took := l.takeFree("t"); took {
		t.Fatal("a run took a token from an empty bucket")
	}
	// A live call reserves the token that comes free in 50 ms (and waits for it).
	if w, err := l.Wait(ctx, "t"); err != nil || w != 50*time.Millisecond {
		t.Fatalf("live call waited %v, %v", w, err)
	}
	now = now.Add(50 * time.Millisecond)
	if _, took := l.takeFree("t"); took {
		t.Fatal("the run took the token the live call had reserved")
	}
	now = now.Add(50 * time.Millisecond)
	if _, took := l.takeFree("t"); !took {
		t.Fatal("the run did not get the next token")
	}
	if _, err := l.Wait(WithBackground(ctx), "other"); err != nil {
		t.Fatalf("a run of an idle tenant: %v", err)
	}
}
