package verifier

import (
	"errors"
	"fmt"
	"math"
)

// Bands are the thresholds of the re-check. DefaultBands holds the values
// calibrated in docs/VERIFICATION.md; every statistical test's false-positive
// rate per answer is at most Alpha , whatever the model.
type Bands struct {
	// Alpha is the per-answer false-positive rate of each statistical test
	// (likelihood PIT, rank): an honest answer from the registered model
	// fails it with probability at most Alpha.
	Alpha float64 `json:"alpha"`
	// RankK: the rank test counts tokens outside the reference's top RankK.
	RankK int `json:"rank_k"`
	// MaxOutput bounds the output length of a request without max_tokens
	// for the stop test: an answer that claims to stop on
	// end-of-generation where the reference gives that token less than
	// Alpha/(max_tokens+1) (after temperature) was truncated. An honest
	// provider stops at such a position with probability below Alpha: at
	// most max_tokens+1 positions, each below that probability.
	MaxOutput int `json:"max_output"`
	// LogprobTol bounds |claimed - reference| per token for a peer engine,
	// per weight type of the registered file (peercheck tolerances).
	LogprobTol map[string]float64 `json:"logprob_tol"`
	// PeerHardFactor: any token beyond PeerHardFactor*tol fails a peer.
	PeerHardFactor float64 `json:"peer_hard_factor"`
	// PeerBeyondFrac: more than this share of tokens beyond tol (and at
	// least two) fails a peer.
	PeerBeyondFrac float64 `json:"peer_beyond_frac"`
	// PeerTokensInSlack is how many prompt tokens more than the reference
	// counts a peer engine may bill (BOS handling differs between engines).
	PeerTokensInSlack int `json:"peer_tokens_in_slack"`
	// PeerTokensOutSlack is how many output tokens more than the answer holds
	// a peer engine may bill when the answer stopped (finish "stop"): Ollama's
	// and llama.cpp's counts include the end-of-generation token they sampled
	// but did not send.
	PeerTokensOutSlack int `json:"peer_tokens_out_slack"`
}

// DefaultBands returns the calibrated bands.
func DefaultBands() Bands {
	return Bands{
		Alpha:     1e-6,
		RankK:     20,
		MaxOutput: 32768,
		// Measured with the peer check (llama.cpp against the reference
		// on the same file), about twice the largest difference seen;
		// docs/VERIFICATION.md has the measurements and the command.
		LogprobTol: map[string]float64{
			"F32":    5e-3,
			"F16":    1e-2,
			"BF16":   0.05,
			"Q8_0":   0.15,
			"Q6_K":   0.35,
			"Q4_K_M": 0.3,
			"Q4_0":   0.2,
		},
		PeerHardFactor:     4,
		PeerBeyondFrac:     0.05,
		PeerTokensInSlack:  1,
		PeerTokensOutSlack: 1,
	}
}

// Validate checks the bands' ranges.
func (b Bands) Validate() error {
	switch {
	case !(b.Alpha > 0 && b.Alpha < 1):
		return fmt.Errorf("bands: alpha %v outside (0,1)", b.Alpha)
	case b.RankK < 1 || b.RankK > scoreTopK:
		return fmt.Errorf("bands: rank k %d outside [1,%d]", b.RankK, scoreTopK)
	case b.MaxOutput < 1:
		return fmt.Errorf("bands: max output %d below 1", b.MaxOutput)
	case len(b.LogprobTol) == 0:
		return errors.New("bands: no logprob tolerances")
	case !(b.PeerHardFactor >= 1):
		return fmt.Errorf("bands: peer hard factor %v below 1", b.PeerHardFactor)
	case !(b.PeerBeyondFrac >= 0 && b.PeerBeyondFrac < 1):
		return fmt.Errorf("bands: peer beyond fraction %v outside [0,1)", b.PeerBeyondFrac)
	case b.PeerTokensInSlack < 0:
		return errors.New("bands: negative tokens-in slack")
	case b.PeerTokensOutSlack < 0:
		return errors.New("bands: negative tokens-out slack")
	}
	for wt, t := range b.LogprobTol {
		if !(t >= 0) || math.IsInf(t, 0) {
			return fmt.Errorf("bands: logprob tolerance %v for %s", t, wt)
		}
	}
	return nil
}
