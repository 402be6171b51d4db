package logits

import (
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// naiveLogSoftmax is the textbook definition without the max shift, fine for
// the small logits used here.
func naiveLogSoftmax(raw []float32) []float64 {
	var sum float64
	for _, v := range raw {
		sum += math.Exp(float64(v))
	}
	out := make([]float64, len(raw))
	for i, v := range raw {
		out[i] = math.Log(math.Exp(float64(v)) / sum)
	}
	return out
}

// naiveTopK sorts everything.
func naiveTopK(lp []float64, k int) []Alternative {
	all := make([]Alternative, len(lp))
	for i, v := range lp {
		all[i] = Alternative{ID: i, Logprob: v}
	}
	slices.SortStableFunc(all, func(a, b Alternative) int {
		switch {
		case a.Logprob > b.Logprob:
			return -1
		case a.Logprob < b.Logprob:
			return 1
		}
		return a.ID - b.ID
	})
	return all[:min(k, len(all))]
}

func TestGreedy(t *testing.T) {
	tests := []struct {
		name   string
		raw    []float32
		k      int
		wantID int
	}{
		{"single", []float32{0.5}, 3, 0},
		{"max last", []float32{-1, 0, 2, 7}, 2, 3},
		{"tie picks lowest id", []float32{1, 3, 3, -2}, 4, 1},
		{"negative", []float32{-9, -8.5, -10}, 1, 1},
		{"k zero", []float32{1, 2}, 0, 1},
		{"masked", []float32{float32(math.Inf(-1)), 1, 0}, 3, 1},
		{"pseudo random", func() []float32 {
			r := make([]float32, 300)
			x := uint32(12345)
			for i := range r {
				x = x*1664525 + 1013904223
				r[i] = float32(x>>8)/float32(1<<24)*20 - 10
			}
			return r
		}(), 10, -1},
	}
	approx := cmpopts.EquateApprox(0, 1e-12)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Greedy(tt.raw, tt.k)
			if err != nil {
				t.Fatal(err)
			}
			want := naiveTopK(naiveLogSoftmax(tt.raw), max(tt.k, 1))
			if tt.wantID >= 0 && got.ID != tt.wantID {
				t.Errorf("Greedy id = %d, want %d", got.ID, tt.wantID)
			}
			if got.ID != want[0].ID || math.Abs(got.Logprob-want[0].Logprob) > 1e-12 {
				t.Errorf("Greedy = (%d, %v), want (%d, %v)", got.ID, got.Logprob, want[0].ID, want[0].Logprob)
			}
			if tt.k == 0 {
				want = nil
			}
			if diff := cmp.Diff(want, got.Top, approx, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Top (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogSoftmaxStable(t *testing.T) {
	lp, err := LogSoftmax([]float32{1000, 1000, 990})
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range lp {
		sum += math.Exp(v)
	}
	if math.Abs(sum-1) > 1e-12 || math.Abs(lp[0]-lp[1]) != 0 {
		t.Errorf("LogSoftmax = %v (sum of probs %v)", lp, sum)
	}
}

func TestLogSoftmaxRejects(t *testing.T) {
	tests := []struct {
		name string
		raw  []float32
	}{
		{"empty", nil},
		{"nan", []float32{1, float32(math.NaN())}},
		{"+inf", []float32{float32(math.Inf(1)), 0}},
		{"all -inf", []float32{float32(math.Inf(-1)), float32(math.Inf(-1))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LogSoftmax(tt.raw); err == nil {
				t.Errorf("LogSoftmax(%v) succeeded, want error", tt.raw)
			}
		})
	}
}
