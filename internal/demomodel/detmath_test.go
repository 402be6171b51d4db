package demomodel

import (
	"math"
	"testing"
)

func TestDetMathMatchesStdlib(t *testing.T) {
	r := splitmix64{s: 7}
	for i := 0; i < 100000; i++ {
		x := math.Abs(r.uniform()) * math.Pow(10, float64(i%40-20))
		if got, want := dlog(x), math.Log(x); math.Abs(got-want) > 1e-15*math.Max(1, math.Abs(want)) {
			t.Fatalf("dlog(%g) = %g, want %g", x, got, want)
		}
		z := r.uniform() * 2
		if got, want := dcos(z), math.Cos(z); math.Abs(got-want) > 1e-15 {
			t.Fatalf("dcos(%g) = %g, want %g", z, got, want)
		}
		if got, want := dsin(z), math.Sin(z); math.Abs(got-want) > 1e-15 {
			t.Fatalf("dsin(%g) = %g, want %g", z, got, want)
		}
	}
}
