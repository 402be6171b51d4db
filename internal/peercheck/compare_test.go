package peercheck

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tok builds a token whose top-k list is given as id, logprob pairs; the
// chosen token is the first pair.
func tok(pairs ...float64) Token {
	t := Token{ID: int(pairs[0]), Logprob: pairs[1], Text: "t"}
	for i := 0; i+1 < len(pairs); i += 2 {
		t.Top = append(t.Top, Alternative{ID: int(pairs[i]), Logprob: pairs[i+1]})
	}
	return t
}

func completion(finish string, toks ...Token) Completion {
	return Completion{Model: "m", PromptTokens: []int{1, 2, 3}, Tokens: toks, FinishReason: finish}
}

func TestCompare(t *testing.T) {
	const tol = 0.01
	base := completion("length", tok(5, -0.1, 7, -2.5, 9, -4), tok(6, -0.3, 5, -1.4, 8, -3))
	tests := []struct {
		name         string
		ref, peer    Completion
		wantOK       bool
		wantMatched  int
		wantNearTie  int
		wantMaxAbove float64 // MaxAbsDiff must be at least this
	}{
		{
			name: "identical", ref: base, peer: base,
			wantOK: true, wantMatched: 2, wantNearTie: -1,
		},
		{
			name:   "within tolerance",
			ref:    base,
			peer:   completion("length", tok(5, -0.105, 7, -2.495, 9, -4.009), tok(6, -0.3, 5, -1.4, 8, -3)),
			wantOK: true, wantMatched: 2, wantNearTie: -1, wantMaxAbove: 0.008,
		},
		{
			name:   "chosen logprob beyond tolerance",
			ref:    base,
			peer:   completion("length", tok(5, -0.2, 7, -2.5, 9, -4), tok(6, -0.3, 5, -1.4, 8, -3)),
			wantOK: false, wantMatched: 0, wantNearTie: -1,
		},
		{
			name:   "alternative beyond tolerance",
			ref:    base,
			peer:   completion("length", tok(5, -0.1, 7, -2.5, 9, -4), tok(6, -0.3, 5, -1.4, 8, -3.05)),
			wantOK: false, wantMatched: 1, wantNearTie: -1,
		},
		{
			name:   "different token with a clear margin",
			ref:    base,
			peer:   completion("length", tok(5, -0.1, 7, -2.5, 9, -4), tok(5, -0.3, 6, -1.4, 8, -3)),
			wantOK: false, wantMatched: 1, wantNearTie: -1,
		},
		{
			name:   "different token at a near tie",
			ref:    completion("length", tok(5, -0.1, 7, -2.5), tok(6, -0.69, 5, -0.7), tok(1, -1, 2, -2)),
			peer:   completion("length", tok(5, -0.1, 7, -2.5), tok(5, -0.69, 6, -0.7), tok(3, -1, 2, -2)),
			wantOK: true, wantMatched: 1, wantNearTie: 1,
		},
		{
			name:   "swap inside top-k within tolerance",
			ref:    completion("length", tok(5, -0.1, 7, -3.001, 9, -3.0)),
			peer:   completion("length", tok(5, -0.1, 9, -3.0, 7, -3.001)),
			wantOK: true, wantMatched: 1, wantNearTie: -1,
		},
		{
			name:   "boundary swap of the last top-k entry",
			ref:    completion("length", tok(5, -0.1, 7, -3.0, 9, -5.0)),
			peer:   completion("length", tok(5, -0.1, 7, -3.0, 4, -4.995)),
			wantOK: true, wantMatched: 1, wantNearTie: -1,
		},
		{
			name:   "top-k entry missing far above the other's last",
			ref:    completion("length", tok(5, -0.1, 7, -3.0, 9, -5.0)),
			peer:   completion("length", tok(5, -0.1, 7, -3.0, 4, -4.0)),
			wantOK: false, wantMatched: 0, wantNearTie: -1,
		},
		{
			name:   "prompt tokens differ",
			ref:    base,
			peer:   Completion{PromptTokens: []int{1, 2}, Tokens: base.Tokens, FinishReason: "length"},
			wantOK: false, wantMatched: 0, wantNearTie: -1,
		},
		{
			name:   "peer stops early with a clear margin",
			ref:    base,
			peer:   completion("stop", base.Tokens[0]),
			wantOK: false, wantMatched: 1, wantNearTie: -1,
		},
		{
			name:   "peer stops early at a near tie",
			ref:    completion("length", tok(5, -0.1, 7, -2.5), tok(6, -0.69, 2, -0.7)),
			peer:   completion("stop", tok(5, -0.1, 7, -2.5)),
			wantOK: true, wantMatched: 1, wantNearTie: 1,
		},
		{
			name:   "both stop",
			ref:    completion("stop", base.Tokens[0]),
			peer:   completion("stop", base.Tokens[0]),
			wantOK: true, wantMatched: 1, wantNearTie: -1,
		},
		{
			name:   "finish reasons differ",
			ref:    completion("stop", base.Tokens[0]),
			peer:   completion("length", base.Tokens[0]),
			wantOK: false, wantMatched: 1, wantNearTie: -1,
		},
		{
			name: "token text differs",
			ref:  base,
			peer: func() Completion {
				c := completion("length", base.Tokens...)
				c.Tokens = append([]Token(nil), c.Tokens...)
				c.Tokens[1].Text = "other"
				return c
			}(),
			wantOK: false, wantMatched: 1, wantNearTie: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compare(tt.ref, tt.peer, tol)
			got := []any{r.OK(), r.Matched, r.NearTie}
			want := []any{tt.wantOK, tt.wantMatched, tt.wantNearTie}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Compare [ok matched nearTie] (-want +got):\n%s\nproblems: %q", diff, r.Problems)
			}
			if r.MaxAbsDiff < tt.wantMaxAbove || r.MaxAbsDiff > tol {
				t.Errorf("MaxAbsDiff = %v, want in [%v, %v]", r.MaxAbsDiff, tt.wantMaxAbove, tol)
			}
			// Compare is symmetric in what it accepts.
			if back := Compare(tt.peer, tt.ref, tol); back.OK() != r.OK() || back.Matched != r.Matched {
				t.Errorf("Compare(peer, ref) ok=%v matched=%d, Compare(ref, peer) ok=%v matched=%d",
					back.OK(), back.Matched, r.OK(), r.Matched)
			}
		})
	}
}
