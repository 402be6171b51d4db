package router

import "sync"

// DefaultShareWindow is the number of requests over which Shares forgets: each routed request
// decays every provider's count for the model by a factor 1 − 1/window.
const DefaultShareWindow = 256

// Shares keeps, per model, the traffic the gateway gave each provider recently: expected
// completion tokens of the requests it was the first choice for, decayed exponentially per
// request so that old traffic fades. Balanced compares these with the proven-capacity bounds.
// It is safe for concurrent use.
type Shares struct {
	decay float64
	mu    sync.Mutex
	m     map[string]map[string]float64 // model → provider → decayed tokens
}

// NewShares returns empty Shares that forget over window requests (≤ 0: DefaultShareWindow).
func NewShares(window int) *Shares {
	if window <= 0 {
		window = DefaultShareWindow
	}
	return &Shares{decay: 1 - 1/float64(window), m: map[string]map[string]float64{}}
}

// Add records that provider was given a request for model of tokens expected completion
// tokens (at least 1 is counted).
func (s *Shares) Add(model, provider string, tokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pm := s.m[model]
	if pm == nil {
		pm = map[string]float64{}
		s.m[model] = pm
	}
	for p, v := range pm {
		pm[p] = v * s.decay
	}
	pm[provider] += float64(max(tokens, 1))
}

// Fill sets c.Routed from the traffic recorded for c.Provider on model.
func (s *Shares) Fill(model string, c *Candidate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Routed = s.m[model][c.Provider]
}
