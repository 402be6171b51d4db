// Package logits turns the raw float32 logits llama.cpp returns into the
// greedy choice and float64 log-probabilities that llamapeer prints.
//
// Nothing here samples: the chosen token is the argmax of the raw logits
// (lowest id on an exact tie) and log-probabilities are the log-softmax of
// the raw logits, computed in float64, so that the numbers compare directly
// with the built-in engine's `mycel run --temperature 0 --logprobs K` output.
package logits

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Alternative is one entry of a position's top-k list.
type Alternative struct {
	ID      int     `json:"id"`
	Logprob float64 `json:"logprob"`
}

// Step is the outcome of one decoding position.
type Step struct {
	// ID is the greedy token: the argmax of the raw logits, lowest id on ties.
	ID int
	// Logprob is ID's log-probability.
	Logprob float64
	// Top holds the k most likely tokens, most likely first, ties by id.
	Top []Alternative
}

// ErrEmpty is returned for an empty logits vector.
var ErrEmpty = errors.New("empty logits")

// Greedy computes the greedy choice, its log-probability and the top k
// alternatives from one position's logits. It fails on an empty vector or
// on logits that are NaN or +Inf, which a healthy model never produces.
func Greedy(raw []float32, k int) (Step, error) {
	lp, err := LogSoftmax(raw)
	if err != nil {
		return Step{}, err
	}
	top := TopK(lp, max(k, 1))
	s := Step{ID: top[0].ID, Logprob: top[0].Logprob}
	if k > 0 {
		s.Top = top
	}
	return s, nil
}

// LogSoftmax returns log(softmax(raw)) computed in float64 with the usual
// max shift. -Inf logits (masked tokens) get -Inf.
func LogSoftmax(raw []float32) ([]float64, error) {
	if len(raw) == 0 {
		return nil, ErrEmpty
	}
	m := math.Inf(-1)
	for i, v := range raw {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 1) {
			return nil, fmt.Errorf("logit %d is %v", i, f)
		}
		m = max(m, f)
	}
	if math.IsInf(m, -1) {
		return nil, errors.New("all logits are -inf")
	}
	var sum float64
	for _, v := range raw {
		sum += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(sum)
	out := make([]float64, len(raw))
	for i, v := range raw {
		out[i] = float64(v) - lse
	}
	return out, nil
}

// TopK returns the k largest entries of lp, largest first, equal values by
// ascending id. k is clamped to len(lp).
func TopK(lp []float64, k int) []Alternative {
	k = min(max(k, 0), len(lp))
	top := make([]Alternative, 0, k+1)
	for id, v := range lp {
		if len(top) == k && !better(v, id, top[k-1]) {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, Alternative{ID: id, Logprob: v}, func(a, b Alternative) int {
			switch {
			case better(a.Logprob, a.ID, b):
				return -1
			case better(b.Logprob, b.ID, a):
				return 1
			}
			return 0
		})
		top = slices.Insert(top, i, Alternative{ID: id, Logprob: v})
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// better reports whether (v, id) ranks before a.
func better(v float64, id int, a Alternative) bool {
	if v != a.Logprob {
		return v > a.Logprob
	}
	return id < a.ID
}
