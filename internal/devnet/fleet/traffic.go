package fleet

import (
	"math"
	"strconv"

	dto "github.com/prometheus/client_model/go"

	"github.com/mycel-network/mycel/internal/explorer"
)

// Traffic implements explorer.Traffic from the gateway's and the providers'
// Prometheus metrics: totals, failovers, hedges and the TTFT distribution
// from the gateway; requests, tokens and request durations per provider
// (providers also count the verifier's audit requests).
func (f *Fleet) Traffic() explorer.TrafficSnapshot {
	var s explorer.TrafficSnapshot
	if f.gwReg != nil {
		fams, _ := f.gwReg.Gather()
		for _, mf := range fams {
			switch mf.GetName() {
			case "mycel_gateway_requests_total":
				for _, m := range mf.GetMetric() {
					if route := label(m, "route"); route != "chat" && route != "completions" {
						continue
					}
					v := uint64(m.GetCounter().GetValue())
					s.Requests += v
					if code, _ := strconv.Atoi(label(m, "code")); code >= 400 {
						s.Errors += v
					}
				}
			case "mycel_gateway_failovers_total":
				s.Failovers = sumCounters(mf)
			case "mycel_gateway_hedges_total":
				s.Hedges = sumCounters(mf)
			case "mycel_gateway_spend_umyc_total":
				s.SpendUmyc = sumCounters(mf)
			case "mycel_gateway_ttft_seconds":
				if ms := mf.GetMetric(); len(ms) > 0 {
					s.TTFTMs = histogram(ms[0].GetHistogram(), 1000)
				}
			}
		}
	}
	for _, p := range f.providers {
		pt := explorer.ProviderTraffic{Address: p.Address}
		fams, _ := p.reg.Gather()
		for _, mf := range fams {
			switch mf.GetName() {
			case "mycel_provider_requests_total":
				for _, m := range mf.GetMetric() {
					v := uint64(m.GetCounter().GetValue())
					pt.Requests += v
					if code, _ := strconv.Atoi(label(m, "code")); code >= 400 {
						pt.Errors += v
					}
				}
			case "mycel_provider_tokens_total":
				for _, m := range mf.GetMetric() {
					v := uint64(m.GetCounter().GetValue())
					if label(m, "direction") == "out" {
						pt.TokensOut += v
						s.TokensOut += v
					} else {
						s.TokensIn += v
					}
				}
			case "mycel_provider_request_duration_seconds":
				// Whole-request durations stand in for TTFT per provider
				// until the gateway reports per-provider timings.
				var merged *explorer.Histogram
				for _, m := range mf.GetMetric() {
					h := histogram(m.GetHistogram(), 1000)
					if merged == nil {
						merged = &h
						continue
					}
					for i := range merged.Counts {
						if i < len(h.Counts) {
							merged.Counts[i] += h.Counts[i]
						}
					}
				}
				if merged != nil {
					pt.TTFTMs = *merged
				}
			}
		}
		s.Providers = append(s.Providers, pt)
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func sumCounters(mf *dto.MetricFamily) uint64 {
	var n float64
	for _, m := range mf.GetMetric() {
		n += m.GetCounter().GetValue()
	}
	return uint64(n)
}

// histogram turns a Prometheus histogram (cumulative buckets) into an
// explorer histogram, scaling bounds (seconds → ms with 1000).
func histogram(h *dto.Histogram, scale float64) explorer.Histogram {
	var out explorer.Histogram
	var prev uint64
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			continue
		}
		out.Bounds = append(out.Bounds, b.GetUpperBound()*scale)
		out.Counts = append(out.Counts, b.GetCumulativeCount()-prev)
		prev = b.GetCumulativeCount()
	}
	out.Counts = append(out.Counts, h.GetSampleCount()-prev)
	return out
}
