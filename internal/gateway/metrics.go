package gateway

import "github.com/prometheus/client_golang/prometheus"

// metrics are the gateway's Prometheus metrics.
type metrics struct {
	requests  *prometheus.CounterVec
	ttft      prometheus.Histogram
	attempts  *prometheus.CounterVec
	failovers prometheus.Counter
	hedges    *prometheus.CounterVec
	spend     prometheus.Counter
	receipts  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mycel_gateway_requests_total", Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mycel_gateway_ttft_seconds", Help: "Time from request to the answer's first token from a provider (streamed to the client, or the start of a non-streaming answer).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mycel_gateway_upstream_attempts_total", Help: "Requests sent to providers by outcome.",
		}, []string{"outcome"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mycel_gateway_failovers_total", Help: "Mid-stream failovers (answers continued on another provider).",
		}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mycel_gateway_hedges_total", Help: "Hedged requests by which attempt won.",
		}, []string{"winner"}),
		spend: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mycel_gateway_spend_umyc_total", Help: "umyc owed to providers.",
		}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mycel_gateway_receipts_total", Help: "Provider receipts by verification result.",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.ttft, m.attempts, m.failovers, m.hedges, m.spend, m.receipts)
	}
	return m
}
