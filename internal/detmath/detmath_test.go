package detmath

import (
	"math"
	"testing"
)

// TestLdexp checks the fast ldexp against math.Ldexp over exp's whole
// range of reductions, including the edges where it falls back.
func TestLdexp(t *testing.T) {
	ys := []float64{0.5, 0.70710678, 1, 1.4142135623730951, 1.9999999999999998, math.Nextafter(0.5, 1)}
	for k := -1080; k <= 1030; k++ {
		for _, y := range ys {
			if got, want := ldexp(y, k), math.Ldexp(y, k); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("ldexp(%v, %d) = %v, math.Ldexp %v", y, k, got, want)
			}
		}
	}
}

// TestExpRange checks Exp at the inputs the engine and the demo models feed it (float32
// values widened to float64) against math.Exp: within 1 ulp (math.Exp may
// use FMA), and exactly 0, 1, +Inf at the edges.
func TestExpRange(t *testing.T) {
	for _, x := range []float64{-800, -745.2, -700, -88.7, -20, -1, -1e-9, 0, 1e-9, 0.5, 1, 20, 88.7, 700, 709.7, 710} {
		got, want := Exp(x), math.Exp(x)
		if got == want {
			continue
		}
		if d := math.Abs(got-want) / math.Abs(want); d > 2.3e-16 {
			t.Errorf("Exp(%v) = %v, math.Exp %v (rel %g)", x, got, want, d)
		}
	}
}
