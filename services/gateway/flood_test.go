package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Figures of TestUnsignedFloodKeepsTheHeapBounded.
const (
	floodRequests = 500
	// floodBody is what each request announces and sends: the largest body the intake takes.
	floodBody = 256 << 10
	// floodHeld is what each request sends before it stalls, so that every request the intake
	// reads is in memory at the same moment.
	floodHeld = 200 << 10
	// floodHeapBound is the most the gateway's live heap may grow while the flood is held: the
	// bodies of the intake's slots (32 × 256 KiB) and the buffers of 500 connections. Before the
	// intake refused unsigned requests unread and capped the reads in flight, the same flood
	// held 500 bodies, over 100 MiB.
	floodHeapBound = 24 << 20
	// floodClientEnv tells TestFloodClient, run as a child process, where to send the flood.
	floodClientEnv = "KOPPEL_TEST_FLOOD_URL"
)

// countingBody reports once when the handler has read floodHeld bytes of a request.
type countingBody struct {
	io.ReadCloser
	read int
	held bool
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.read += n
	return n, err
}

// TestUnsignedFloodKeepsTheHeapBounded sends 500 concurrent requests with a signature header
// that cannot verify and full-size bodies that stall part-way to the real intake over loopback,
// and measures the live heap (runtime.MemStats after a GC) at the moment every request is
// either answered or stalled inside the intake. The requests come from a child process, so the
// heap measured is the gateway's alone.
func TestUnsignedFloodKeepsTheHeapBounded(t *testing.T) {
	in := newIntake(t)
	// settled closes when every request is either answered or stalled inside the intake.
	var held, done atomic.Int64
	settled := make(chan struct{})
	var settle sync.Once
	progress := func() {
		if held.Load()+done.Load() == floodRequests {
			settle.Do(func() { close(settled) })
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb := &countingBody{ReadCloser: r.Body}
		r.Body = readHook{cb, func() {
			if !cb.held && cb.read >= floodHeld {
				cb.held = true
				held.Add(1)
				progress()
			}
		}}
		in.handler.ServeHTTP(w, r)
		if !cb.held {
			done.Add(1)
			progress()
		}
	}))
	t.Cleanup(srv.Close)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	child := exec.Command(os.Args[0], "-test.run=^TestFloodClient$", "-test.count=1", "-test.timeout=5m")
	child.Env = append(os.Environ(), floodClientEnv+"="+srv.URL+"/webhooks/tribe/acme")
	release, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-settled:
	case <-time.After(2 * time.Minute):
		_ = child.Process.Kill()
		t.Fatalf("after two minutes %d requests stalled in the intake and %d answered, of %d", held.Load(), done.Load(), floodRequests)
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	release.Close()
	var counts floodCounts
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		_ = json.Unmarshal(sc.Bytes(), &counts)
	}
	if err := child.Wait(); err != nil || counts.Statuses == nil {
		t.Fatalf("flood client: %v\n%s", err, lines)
	}

	growth := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("live heap %.1f MiB before, %.1f MiB with the flood held (%d stalled in the intake, %d answered); answers %v",
		float64(before.HeapAlloc)/(1<<20), float64(during.HeapAlloc)/(1<<20), held.Load(), done.Load(), counts.Statuses)
	if growth > floodHeapBound {
		t.Errorf("the flood grew the live heap by %.1f MiB, bound %d MiB", float64(growth)/(1<<20), floodHeapBound>>20)
	}
	if counts.Statuses["503"] == 0 {
		t.Errorf("answers %v: no request was turned away for want of a slot", counts.Statuses)
	}
	if counts.NoRetryAfter > 0 {
		t.Errorf("%d answers 503 without Retry-After", counts.NoRetryAfter)
	}
	if n := in.stored(t); n != 0 {
		t.Errorf("stored %d events from unsigned requests", n)
	}
}

// readHook calls after every read of its body.
type readHook struct {
	*countingBody
	after func()
}

func (h readHook) Read(p []byte) (int, error) {
	n, err := h.countingBody.Read(p)
	h.after()
	return n, err
}

// floodCounts is what the flood client reports.
type floodCounts struct {
	Statuses     map[string]int `json:"statuses"`
	NoRetryAfter int            `json:"no_retry_after"`
}

// stallingBody sends floodHeld bytes, waits for release, then sends the rest of floodBody.
type stallingBody struct {
	sent    int
	release <-chan struct{}
}

var floodBytes = make([]byte, floodBody)

func (b *stallingBody) Read(p []byte) (int, error) {
	if b.sent == floodHeld {
		<-b.release
	}
	if b.sent >= floodBody {
		return 0, io.EOF
	}
	end := floodBody
	if b.sent < floodHeld {
		end = floodHeld
	}
	n := copy(p, floodBytes[b.sent:end])
	b.sent += n
	return n, nil
}

// TestFloodClient is the child process of TestUnsignedFloodKeepsTheHeapBounded: it sends the
// flood, lets the bodies go on when its standard input closes, and prints what came back.
func TestFloodClient(t *testing.T) {
	url := os.Getenv(floodClientEnv)
	if url == "" {
		t.Skip("the child process of TestUnsignedFloodKeepsTheHeapBounded")
	}
	release := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(release)
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1}, Timeout: 4 * time.Minute}
	var mu sync.Mutex
	counts := floodCounts{Statuses: map[string]int{}}
	var wg sync.WaitGroup
	for range floodRequests {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", url, &stallingBody{release: release})
			req.ContentLength = floodBody
			req.Header.Set("X-Tribe-Signature", "bm90LWEtc2lnbmF0dXJl")
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				counts.Statuses["error"]++
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			counts.Statuses[fmt.Sprint(resp.StatusCode)]++
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				counts.NoRetryAfter++
			}
		})
	}
	wg.Wait()
	b, _ := json.Marshal(counts)
	fmt.Println(string(b))
}
