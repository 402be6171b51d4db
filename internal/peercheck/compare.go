// Package peercheck compares Mycel's built-in engine with llama.cpp, an
// engine the project did not write, on the same GGUF files.
//
// Both engines print a greedy completion with per-token top-k
// log-probabilities as JSON (`mycel run --temperature 0 --logprobs K
// --output json` and `llamapeer generate`, built by scripts/build-peer.sh).
// Compare walks the two completions position by position: the chosen token
// ids must be identical and every log-probability both engines report for
// the same token must agree within a tolerance. Floating-point sums in the two
// engines differ in order, so when the best two candidates of a position are
// closer than twice the tolerance the engines may legitimately pick
// different tokens; Compare stops there and reports the position as a
// near tie rather than a failure.
//
// The check itself runs the two binaries and lives in peer_test.go behind
// the build tag `peer` (see scripts/peer-check.sh and docs/PEER.md); this
// file is pure and tested by the ordinary test run.
package peercheck

import (
	"fmt"
	"math"
	"slices"
)

// Completion is the JSON both engines print for one greedy run.
type Completion struct {
	Model        string  `json:"model"`
	PromptTokens []int   `json:"prompt_tokens"`
	Tokens       []Token `json:"tokens"`
	// FinishReason is "length" or "stop" (an end-of-generation token, which
	// is not part of Tokens).
	FinishReason string `json:"finish_reason"`
}

// Token is one generated token.
type Token struct {
	ID      int           `json:"id"`
	Text    string        `json:"text"`
	Logprob float64       `json:"logprob"`
	Top     []Alternative `json:"top"`
}

// Alternative is an entry of a position's top-k list, most likely first.
type Alternative struct {
	ID      int     `json:"id"`
	Logprob float64 `json:"logprob"`
}

// Report is the outcome of comparing two completions of the same prompt.
type Report struct {
	// Positions is the number of positions both engines generated.
	Positions int
	// Matched is the number of leading positions where both engines chose
	// the same token with log-probabilities within tolerance.
	Matched int
	// NearTie is the position where the engines chose different tokens
	// while the top-2 margin of one of them was below the tie margin, or -1.
	NearTie int
	// NearTieMargin is the smaller of the two engines' top-2 margins at
	// NearTie.
	NearTieMargin float64
	// MaxAbsDiff is the largest |ref - peer| over every log-probability
	// compared in the matched positions.
	MaxAbsDiff float64
	// Problems lists every disagreement beyond tolerance; empty means the
	// completions agree.
	Problems []string
}

// OK reports whether the completions agree.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// TieMargin is the top-2 margin below which two engines whose
// log-probabilities agree within tol may rank the two candidates
// differently: each of the two values may move by tol, so their order can
// flip only when they are less than 2*tol apart.
func TieMargin(tol float64) float64 { return 2 * tol }

// Compare checks peer against ref. tol bounds |ref - peer| for the
// log-probability of any token both engines report at a position.
//
// At each position both engines generated: if the chosen ids differ, the
// position is a near tie when either engine's top-2 margin is below
// TieMargin(tol) (comparison stops there, not a failure) and a problem
// otherwise. If they agree, the chosen token's log-probabilities and those
// of every id in both top-k lists are compared; an id in one engine's top-k
// and missing from the other's must not exceed the other's last top-k entry
// by more than tol (were it within tol, it would rank above that entry).
// Once the chosen tokens diverge the contexts differ and nothing after is
// compared. Completions of different length are a problem unless the shorter
// one ends where the longer one's top-2 margin is below the tie margin.
func Compare(ref, peer Completion, tol float64) Report {
	r := Report{NearTie: -1}
	problem := func(format string, args ...any) {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
	if !slices.Equal(ref.PromptTokens, peer.PromptTokens) {
		problem("prompt tokens differ: ref %v, peer %v", ref.PromptTokens, peer.PromptTokens)
		return r
	}
	tie := TieMargin(tol)
	r.Positions = min(len(ref.Tokens), len(peer.Tokens))
	for i := range r.Positions {
		a, b := ref.Tokens[i], peer.Tokens[i]
		if a.ID != b.ID {
			m := min(margin(a.Top), margin(b.Top))
			if m < tie {
				r.NearTie, r.NearTieMargin = i, m
				return r
			}
			problem("position %d: ref chose %d (%q), peer chose %d (%q); top-2 margins ref %.4g, peer %.4g >= tie margin %.4g",
				i, a.ID, a.Text, b.ID, b.Text, margin(a.Top), margin(b.Top), tie)
			return r
		}
		before := len(r.Problems)
		if a.Text != b.Text {
			problem("position %d: token %d text ref %q, peer %q", i, a.ID, a.Text, b.Text)
		}
		r.diff(i, fmt.Sprintf("token %d", a.ID), a.Logprob, b.Logprob, tol, problem)
		if len(a.Top) != len(b.Top) {
			problem("position %d: top-k lengths ref %d, peer %d", i, len(a.Top), len(b.Top))
		}
		ra, rb := index(a.Top), index(b.Top)
		for _, x := range a.Top {
			if y, ok := rb[x.ID]; ok {
				r.diff(i, fmt.Sprintf("top id %d", x.ID), x.Logprob, y, tol, problem)
			} else if len(b.Top) > 0 && x.Logprob > b.Top[len(b.Top)-1].Logprob+tol {
				problem("position %d: id %d (logprob %.6g) in ref's top-k, missing from peer's whose last is %.6g",
					i, x.ID, x.Logprob, b.Top[len(b.Top)-1].Logprob)
			}
		}
		for _, y := range b.Top {
			if _, ok := ra[y.ID]; !ok && len(a.Top) > 0 && y.Logprob > a.Top[len(a.Top)-1].Logprob+tol {
				problem("position %d: id %d (logprob %.6g) in peer's top-k, missing from ref's whose last is %.6g",
					i, y.ID, y.Logprob, a.Top[len(a.Top)-1].Logprob)
			}
		}
		if len(r.Problems) > before {
			return r
		}
		r.Matched++
	}
	if len(ref.Tokens) != len(peer.Tokens) {
		longer, name := ref, "ref"
		if len(peer.Tokens) > len(ref.Tokens) {
			longer, name = peer, "peer"
		}
		next := longer.Tokens[r.Positions]
		if m := margin(next.Top); m < tie {
			r.NearTie, r.NearTieMargin = r.Positions, m
			return r
		}
		problem("lengths differ: ref %d tokens (%s), peer %d tokens (%s); %s's token %d at position %d has top-2 margin %.4g >= tie margin %.4g",
			len(ref.Tokens), ref.FinishReason, len(peer.Tokens), peer.FinishReason, name, next.ID, r.Positions, margin(next.Top), tie)
		return r
	}
	if ref.FinishReason != peer.FinishReason {
		problem("finish reasons differ: ref %q, peer %q", ref.FinishReason, peer.FinishReason)
	}
	return r
}

// diff records |x - y| and a problem when it exceeds tol.
func (r *Report) diff(pos int, what string, x, y, tol float64, problem func(string, ...any)) {
	d := math.Abs(x - y)
	if math.IsNaN(d) || d > tol {
		problem("position %d: %s logprob ref %.6g, peer %.6g, |diff| %.3g > tolerance %.3g", pos, what, x, y, d, tol)
		return
	}
	r.MaxAbsDiff = max(r.MaxAbsDiff, d)
}

// margin is the gap between the best and second-best log-probability, +Inf
// with fewer than two entries.
func margin(top []Alternative) float64 {
	if len(top) < 2 {
		return math.Inf(1)
	}
	return top[0].Logprob - top[1].Logprob
}

func index(top []Alternative) map[int]float64 {
	m := make(map[int]float64, len(top))
	for _, a := range top {
		m[a.ID] = a.Logprob
	}
	return m
}
