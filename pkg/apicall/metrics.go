package apicall

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	rateWait *prometheus.CounterVec
}

// registerMetrics registers the metrics, reusing collectors that another Caller registered on the
// same registry first (the tribe and e-Boekhouden callers of one process share them).
func registerMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koppel_api_requests_total",
			Help: "HTTP attempts to remote APIs, by system, route template and status code (\"error\" when no answer came).",
		}, []string{"system", "endpoint", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koppel_api_request_duration_seconds",
			Help:    "Duration of HTTP attempts to remote APIs, body read included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"system", "endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koppel_api_retries_total",
			Help: "Retried attempts to remote APIs.",
		}, []string{"system", "endpoint"}),
		rateWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koppel_api_ratelimit_wait_seconds_total",
			Help: "Seconds spent waiting because of rate limits: the client-side limiter and the servers' 429 answers.",
		}, []string{"system"}),
	}
	if r == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(r, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(r, m.duration); err != nil {
		return nil, err
	}
	if m.retries, err = register(r, m.retries); err != nil {
		return nil, err
	}
	if m.rateWait, err = register(r, m.rateWait); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	err := r.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}
