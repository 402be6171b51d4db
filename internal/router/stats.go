package router

import (
	"slices"
	"sync"
	"time"
)

// Outcome is the result of one request on one provider.
type Outcome struct {
	OK        bool          // completed (a stream that broke or an error status is not OK)
	TTFT      time.Duration // time to first token; 0 if none arrived
	TokensOut int           // completion tokens delivered
	Decode    time.Duration // time from first to last token
}

// StatsConfig tunes Stats. Zero fields take the defaults.
type StatsConfig struct {
	Alpha            float64       // EWMA weight of a new sample (default 0.2)
	Window           int           // TTFT samples kept for the p95 (default 64)
	FailureThreshold int           // consecutive failures that open the breaker (default 5)
	OpenFor          time.Duration // how long an open breaker rejects (default 10 s)
}

// Stats keeps per-provider measurements (moving averages, a TTFT window for the p95, success
// rate, in-flight count) and a circuit breaker per provider. It is safe for concurrent use; it
// reads no clock: callers pass the time.
type Stats struct {
	cfg StatsConfig
	mu  sync.Mutex
	m   map[string]*provStats
}

type provStats struct {
	samples     int
	ttft, tps   float64
	success     float64
	window      []float64 // ring of TTFT ms
	next        int
	inFlight    int
	consecutive int       // consecutive failures
	openUntil   time.Time // breaker open until then
	probing     bool      // half-open: one probe in flight
}

// NewStats returns empty Stats.
func NewStats(cfg StatsConfig) *Stats {
	if cfg.Alpha <= 0 || cfg.Alpha > 1 {
		cfg.Alpha = 0.2
	}
	if cfg.Window <= 0 {
		cfg.Window = 64
	}
	if cfg.FailureThreshold <= 0 {
		cfg.FailureThreshold = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 10 * time.Second
	}
	return &Stats{cfg: cfg, m: make(map[string]*provStats)}
}

func (s *Stats) get(p string) *provStats {
	ps := s.m[p]
	if ps == nil {
		ps = &provStats{success: 1}
		s.m[p] = ps
	}
	return ps
}

// Allow reports whether the breaker of p lets a request through at now. An open breaker
// rejects until its cooldown passes, then lets exactly one probe through (half-open) until
// that probe's outcome is recorded.
func (s *Stats) Allow(p string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.get(p)
	if ps.consecutive < s.cfg.FailureThreshold {
		return true
	}
	if now.Before(ps.openUntil) || ps.probing {
		return false
	}
	ps.probing = true
	return true
}

// Open reports whether p's breaker would reject a request at now (without taking the probe).
func (s *Stats) Open(p string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.get(p)
	return ps.consecutive >= s.cfg.FailureThreshold && (now.Before(ps.openUntil) || ps.probing)
}

// Start counts a request starting on p.
func (s *Stats) Start(p string) {
	s.mu.Lock()
	s.get(p).inFlight++
	s.mu.Unlock()
}

// Cancel counts a request on p that ended without an outcome worth recording (a hedge the
// gateway cancelled itself).
func (s *Stats) Cancel(p string) {
	s.mu.Lock()
	ps := s.get(p)
	ps.inFlight = max(ps.inFlight-1, 0)
	ps.probing = false
	s.mu.Unlock()
}

// Done records the outcome of a request on p that Start counted.
func (s *Stats) Done(p string, o Outcome, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.get(p)
	ps.inFlight = max(ps.inFlight-1, 0)
	ps.probing = false
	a := s.cfg.Alpha
	ok := 0.0
	if o.OK {
		ok = 1
	}
	ps.success += a * (ok - ps.success)
	if o.TTFT > 0 {
		ms := float64(o.TTFT) / float64(time.Millisecond)
		if ps.samples == 0 {
			ps.ttft = ms
		} else {
			ps.ttft += a * (ms - ps.ttft)
		}
		if len(ps.window) < s.cfg.Window {
			ps.window = append(ps.window, ms)
		} else {
			ps.window[ps.next] = ms
			ps.next = (ps.next + 1) % s.cfg.Window
		}
		if o.TokensOut > 1 && o.Decode > 0 {
			tps := float64(o.TokensOut-1) / o.Decode.Seconds()
			if ps.tps == 0 {
				ps.tps = tps
			} else {
				ps.tps += a * (tps - ps.tps)
			}
		}
		ps.samples++
	}
	if o.OK {
		ps.consecutive = 0
		return
	}
	ps.consecutive++
	if ps.consecutive >= s.cfg.FailureThreshold {
		ps.openUntil = now.Add(s.cfg.OpenFor)
	}
}

// ObserveTTFT records a lower bound of p's time to first token from a request cancelled
// before its first token (a hedge the other provider won): without it a provider that keeps
// losing hedges would keep a p95 that says it is fast.
func (s *Stats) ObserveTTFT(p string, atLeast time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.get(p)
	ms := float64(atLeast) / float64(time.Millisecond)
	if ps.samples == 0 {
		ps.ttft = ms
	} else {
		ps.ttft += s.cfg.Alpha * (ms - ps.ttft)
	}
	if len(ps.window) < s.cfg.Window {
		ps.window = append(ps.window, ms)
	} else {
		ps.window[ps.next] = ms
		ps.next = (ps.next + 1) % s.cfg.Window
	}
	ps.samples++
}

// P95TTFT returns p's 95th-percentile time to first token, or 0 with fewer than 3 samples.
func (s *Stats) P95TTFT(p string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.m[p]
	if ps == nil || len(ps.window) < minSamples {
		return 0
	}
	return time.Duration(p95(ps.window) * float64(time.Millisecond))
}

func p95(w []float64) float64 {
	s := slices.Clone(w)
	slices.Sort(s)
	i := (len(s)*95 + 99) / 100 // ceil(0.95·n), 1-based
	return s[max(i-1, 0)]
}

// Fill copies p's measurements into c (Samples, TTFT, p95, tokens/s, success rate, in-flight,
// breaker state at now).
func (s *Stats) Fill(c *Candidate, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.get(c.Provider)
	c.Samples = ps.samples
	c.TTFTMs = ps.ttft
	c.TokensPerSec = ps.tps
	c.SuccessRate = ps.success
	c.InFlight = ps.inFlight
	if len(ps.window) > 0 {
		c.TTFTP95Ms = p95(ps.window)
	}
	c.CircuitOpen = ps.consecutive >= s.cfg.FailureThreshold && (now.Before(ps.openUntil) || ps.probing)
}
