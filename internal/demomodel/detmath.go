package demomodel

import "math"

// The weights must be bit-identical on every machine. Go's math.Log and
// math.Exp use assembly on some architectures, and the compiler may fuse
// x*y+z into one instruction on others (arm64, ppc64, s390x). The functions
// here are the portable algorithms from Go's math package with every product
// wrapped in float64(), which the spec defines to round and so forbids fusion.
// All arithmetic that feeds the weights goes through mul/dot below or is
// written the same way.

// dlog returns the natural logarithm of x > 0 (FreeBSD's e_log.c, as in Go).
func dlog(x float64) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
		l1    = 6.666666666666735130e-01
		l2    = 3.999999999940941908e-01
		l3    = 2.857142874366239149e-01
		l4    = 2.222219843214978396e-01
		l5    = 1.818357216161805012e-01
		l6    = 1.531383769920937332e-01
		l7    = 1.479819860511658591e-01
	)
	switch {
	case math.IsNaN(x) || math.IsInf(x, 1):
		return x
	case x < 0:
		return math.NaN()
	case x == 0:
		return math.Inf(-1)
	}
	f1, ki := math.Frexp(x)
	if f1 < math.Sqrt2/2 {
		f1 *= 2
		ki--
	}
	f := f1 - 1
	k := float64(ki)
	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := float64(s2 * (l1 + float64(s4*(l3+float64(s4*(l5+float64(s4*l7)))))))
	t2 := float64(s4 * (l2 + float64(s4*(l4+float64(s4*l6)))))
	r := t1 + t2
	hfsq := float64(0.5 * float64(f*f))
	return float64(k*ln2Hi) - ((hfsq - (float64(s*(hfsq+r)) + float64(k*ln2Lo))) - f)
}

// dcos and dsin return cos x and sin x for |x| <= 2 by their Taylor series
// (math.Cos and math.Sin may be fused or use assembly on some machines).
func dcos(x float64) float64 { return taylor(x, 0) }
func dsin(x float64) float64 { return taylor(x, 1) }

func taylor(x float64, k int) float64 {
	term := 1.0
	if k == 1 {
		term = x
	}
	sum := 0.0
	x2 := float64(x * x)
	for n := k; n < 40; n += 2 {
		sum += term
		term = float64(float64(-term*x2) / float64((n+1)*(n+2)))
	}
	return sum
}

// dot returns the sum of a[i]*b[i] in index order, each product rounded.
func dot(a, b []float64) float64 {
	s := 0.0
	b = b[:len(a)]
	for i, x := range a {
		s += float64(x * b[i])
	}
	return s
}

// axpy does y += a*x, each product rounded.
func axpy(a float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += float64(a * v)
	}
}

// splitmix64 is a tiny deterministic PRNG (Steele, Lea, Flood 2014).
type splitmix64 struct{ s uint64 }

func (r *splitmix64) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a number in [-1, 1) with 53 random bits.
func (r *splitmix64) uniform() float64 {
	return float64(r.next()>>11)*(1.0/(1<<52)) - 1
}
