package verifier

import "math"

// Tally combines the re-checks of one provider's answers. A single sampled
// answer carries little evidence against a provider whose cheating is
// statistical (a close substitute, truncation at plausible points); the
// Fisher PIT statistics of independent answers add up, and the combined
// p-value falls geometrically with the number of audited answers.
//
// Tally tests after every audit; to keep the overall false-positive rate at
// most Alpha over an unbounded number of looks, the k-th look uses
// Alpha/(k(k+1)) (the shares sum to Alpha).
type Tally struct {
	Audits   int     `json:"audits"`
	Failed   int     `json:"failed"` // audits whose own report failed
	PITSum   float64 `json:"pit_sum"`
	PITCount int     `json:"pit_count"`
	// Looks counts the combined tests done (audits with PIT tokens).
	Looks int `json:"looks"`
}

// Add records a report and reports whether the combined statistic now
// rejects honesty at the spent level alpha/(k(k+1)).
func (t *Tally) Add(r Report, alpha float64) (reject bool, logP, threshold float64) {
	t.Audits++
	if !r.Honest {
		t.Failed++
	}
	if r.PITCount == 0 {
		return false, 0, 0
	}
	t.PITSum += r.PITSum
	t.PITCount += r.PITCount
	t.Looks++
	k := float64(t.Looks)
	threshold = math.Log(alpha) - math.Log(k*(k+1))
	logP = gammaUpperTail(t.PITCount, t.PITSum)
	return logP < threshold, logP, threshold
}

// LogP is the combined log p-value of the provider's sampled answers.
func (t Tally) LogP() float64 { return gammaUpperTail(t.PITCount, t.PITSum) }

// PassRate is the share of audits whose report passed (1 with no audits).
func (t Tally) PassRate() float64 {
	if t.Audits == 0 {
		return 1
	}
	return float64(t.Audits-t.Failed) / float64(t.Audits)
}
