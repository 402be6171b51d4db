package provider

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the provider's Prometheus metrics (mycel_provider_*).
type Metrics struct {
	Requests        *prometheus.CounterVec   // by model and HTTP status
	Tokens          *prometheus.CounterVec   // by model and direction (in, out)
	QueueDepth      *prometheus.GaugeVec     // by model
	Errors          *prometheus.CounterVec   // by model and kind
	Duration        *prometheus.HistogramVec // by model
	EarnedUmyc      prometheus.Counter       // billed in receipts
	RedeemedUmyc    prometheus.Counter       // paid by the ledger
	PendingUmyc     prometheus.Gauge         // delivered but not yet redeemed
	Redemptions     *prometheus.CounterVec   // by result (ok, error)
	ModelHealthy    *prometheus.GaugeVec     // by model: 1 healthy, 0 not
	VoucherVerifies prometheus.Counter       // ed25519 voucher checks made
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_provider_requests_total",
			Help: "Inference requests by model and HTTP status."}, []string{"model", "code"}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_provider_tokens_total",
			Help: "Tokens billed by model and direction (in = prompt, out = delivered output)."}, []string{"model", "direction"}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mycel_provider_queue_depth",
			Help: "Requests waiting for a slot, by model."}, []string{"model"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_provider_errors_total",
			Help: "Failed requests by model and kind (bad_request, payment, queue_full, backend, store, client_gone)."}, []string{"model", "kind"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mycel_provider_request_duration_seconds",
			Help: "Time from request to receipt, by model.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"model"}),
		EarnedUmyc: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_provider_earnings_billed_umyc_total",
			Help: "umyc billed in signed receipts."}),
		RedeemedUmyc: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_provider_earnings_redeemed_umyc_total",
			Help: "umyc the ledger paid for redeemed vouchers."}),
		PendingUmyc: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mycel_provider_earnings_pending_umyc",
			Help: "umyc delivered on open channels and not yet redeemed."}),
		Redemptions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mycel_provider_redemptions_total",
			Help: "Voucher redemption transactions by result."}, []string{"result"}),
		ModelHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mycel_provider_model_healthy",
			Help: "1 when the model's backend answers, 0 otherwise."}, []string{"model"}),
		VoucherVerifies: prometheus.NewCounter(prometheus.CounterOpts{Name: "mycel_provider_voucher_verifications_total",
			Help: "Voucher signatures checked (vouchers are checked lazily, see docs/spec/channels.md)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Tokens, m.QueueDepth, m.Errors, m.Duration, m.EarnedUmyc, m.RedeemedUmyc,
			m.PendingUmyc, m.Redemptions, m.ModelHealthy, m.VoucherVerifies)
	}
	return m
}
