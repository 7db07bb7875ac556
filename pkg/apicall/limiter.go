package apicall

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// BudgetError is returned, instead of waiting, by a call whose tenant is out of budget for longer
// than its context allows (WithMaxBudgetWait). Wait is how long the limiter predicts the call
// would have waited: the delay after which a message handed back stands a fair chance.
type BudgetError struct {
	Wait time.Duration
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("out of API budget for about %v", e.Wait.Round(time.Millisecond))
}

type maxWaitKey struct{}

// WithMaxBudgetWait returns a context in which a call that would wait more than d for its
// tenant's budget fails at once with a *BudgetError. A message handler uses it to hand its
// message back instead of holding a worker slot that another tenant's message could use.
func WithMaxBudgetWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, maxWaitKey{}, d)
}

func maxBudgetWait(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(maxWaitKey{}).(time.Duration)
	return d, ok
}

type backgroundKey struct{}

// WithBackground returns a context whose calls yield to every other call of the same tenant:
// they take a token only when one is free and nobody else has reserved it, so a long run (an
// import) uses what its tenant's live work leaves of the budget instead of queueing in front of
// it. A live change then waits for at most the calls already in flight, not for the run.
func WithBackground(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

func isBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}

// Defaults of an AdaptiveLimiter's options.
const (
	DefaultLimiterMinRate  = 0.5
	DefaultLimiterRecovery = 60 * time.Second
	defaultLimiterIdleTTL  = 10 * time.Minute
)

// LimiterOption configures an AdaptiveLimiter.
type LimiterOption func(*AdaptiveLimiter)

// WithMinRate sets the floor the rate never halves below, in calls per second. Default
// DefaultLimiterMinRate (0.5/s).
func WithMinRate(r float64) LimiterOption { return func(l *AdaptiveLimiter) { l.minRate = r } }

// WithRecovery sets how long an additive recovery from the minimum rate to the full rate takes:
// the rate grows by maxRate/d per second after a 429. Default DefaultLimiterRecovery (60 s).
func WithRecovery(d time.Duration) LimiterOption {
	return func(l *AdaptiveLimiter) { l.recovery = d }
}

// WithClock sets the limiter's clock, for tests. Default time.Now.
func WithClock(now func() time.Time) LimiterOption { return func(l *AdaptiveLimiter) { l.now = now } }

// AdaptiveLimiter is a token bucket per key (tenant) whose rate halves on every 429 and then grows
// back linearly (AIMD), so a tenant that hits the server's limit backs off at once and probes its
// way back up slowly. It is safe for concurrent use; idle keys are forgotten.
type AdaptiveLimiter struct {
	maxRate  float64
	burst    float64
	minRate  float64
	recovery time.Duration
	now      func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	rate     float64
	tokens   float64
	last     time.Time // of the last refill
	lastHalf time.Time // of the last halving
}

// NewAdaptiveLimiter returns a limiter allowing maxRate calls per second per key with bursts of
// burst calls.
func NewAdaptiveLimiter(maxRate float64, burst int, opts ...LimiterOption) *AdaptiveLimiter {
	l := &AdaptiveLimiter{
		maxRate:  max(maxRate, 1e-3),
		burst:    float64(max(burst, 1)),
		minRate:  DefaultLimiterMinRate,
		recovery: DefaultLimiterRecovery,
		now:      time.Now,
		buckets:  map[string]*bucket{},
	}
	for _, o := range opts {
		o(l)
	}
	l.minRate = min(max(l.minRate, 1e-3), l.maxRate)
	return l
}

// advance refills b and lets its rate recover, up to now.
func (l *AdaptiveLimiter) advance(b *bucket, now time.Time) {
	dt := now.Sub(b.last).Seconds()
	if dt <= 0 {
		return
	}
	if b.rate < l.maxRate && l.recovery > 0 {
		b.rate = min(l.maxRate, b.rate+l.maxRate*dt/l.recovery.Seconds())
	} else {
		b.rate = l.maxRate
	}
	b.tokens = min(l.burst, b.tokens+dt*b.rate)
	b.last = now
}

func (l *AdaptiveLimiter) bucketFor(key string, now time.Time) *bucket {
	if now.Sub(l.lastSweep) > defaultLimiterIdleTTL {
		for k, b := range l.buckets {
			if now.Sub(b.last) > defaultLimiterIdleTTL && b.tokens >= 0 {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{rate: l.maxRate, tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.advance(b, now)
	return b
}

// Wait takes a token for key, waiting for one if needed, and reports how long it waited. A
// cancelled context returns its error; the token taken is then given back. When the context
// carries a maximum wait (WithMaxBudgetWait) and the wait would be longer, it takes no token and
// returns a *BudgetError at once.
func (l *AdaptiveLimiter) Wait(ctx context.Context, key string) (time.Duration, error) {
	if isBackground(ctx) {
		return l.waitFree(ctx, key)
	}
	l.mu.Lock()
	now := l.now()
	b := l.bucketFor(key, now)
	b.tokens--
	var wait time.Duration
	if b.tokens < 0 {
		wait = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	if limit, ok := maxBudgetWait(ctx); ok && wait > limit {
		b.tokens++
		l.mu.Unlock()
		return 0, &BudgetError{Wait: wait}
	}
	l.mu.Unlock()
	if wait <= 0 {
		return 0, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		l.mu.Lock()
		b.tokens++
		l.mu.Unlock()
		return 0, ctx.Err()
	case <-t.C:
		return wait, nil
	}
}

// waitFree takes a token for key once one is free, never reserving ahead: the calls of other
// callers, which reserve, always go first.
func (l *AdaptiveLimiter) waitFree(ctx context.Context, key string) (time.Duration, error) {
	var waited time.Duration
	for {
		d, took := l.takeFree(key)
		if took {
			return waited, nil
		}
		t := time.NewTimer(max(d, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return waited, ctx.Err()
		case <-t.C:
			waited += d
		}
	}
}

// takeFree takes a token for key when one is free now, else reports how long until one may be.
func (l *AdaptiveLimiter) takeFree(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketFor(key, l.now())
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second)), false
}

// Throttled halves key's rate. Halvings closer together than one token interval count once, since
// the 429s of calls that were already in flight report the same overload.
func (l *AdaptiveLimiter) Throttled(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.bucketFor(key, now)
	if !b.lastHalf.IsZero() && now.Sub(b.lastHalf).Seconds() < 1/b.rate {
		return
	}
	b.rate = max(l.minRate, b.rate/2)
	b.tokens = min(b.tokens, 0)
	b.lastHalf = now
}

// Rate reports key's current rate in calls per second.
func (l *AdaptiveLimiter) Rate(key string) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucketFor(key, l.now()).rate
}
