// Package detmath holds the floating-point functions whose bits must not
// depend on the machine: values that feed consensus (the reference engine's
// log-probabilities) or content hashes (the demo models). The standard
// library's versions may use FMA or assembly chosen at run time.
package detmath

import "math"

// Exp is Go's portable math.exp (BSD licence, The Go Authors) with every
// product rounded explicitly. math.Exp on amd64 switches to an FMA assembly
// version on CPUs that have FMA, which would make results depend on the
// machine; this one gives the same bits everywhere.
func Exp(x float64) float64 {
	const (
		ln2Hi     = 6.93147180369123816490e-01
		ln2Lo     = 1.90821492927058770002e-10
		log2e     = 1.44269504088896338700e+00
		overflow  = 7.09782712893383973096e+02
		underflow = -7.45133219101941108420e+02
		nearZero  = 1.0 / (1 << 28)
	)
	switch {
	case math.IsNaN(x):
		return x
	case x > overflow:
		return math.Inf(1)
	case x < underflow:
		return 0
	case -nearZero < x && x < nearZero:
		return 1 + x
	}
	var k int
	switch {
	case x < 0:
		k = int(float64(log2e*x) - 0.5)
	case x > 0:
		k = int(float64(log2e*x) + 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	const (
		p1 = 1.66666666666666657415e-01
		p2 = -2.77777777770155933842e-03
		p3 = 6.61375632143793436117e-05
		p4 = -1.65339022054652515390e-06
		p5 = 4.13813679705723846039e-08
	)
	r := hi - lo
	t := float64(r * r)
	c := r - float64(t*(p1+float64(t*(p2+float64(t*(p3+float64(t*(p4+float64(t*p5)))))))))
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	return ldexp(y, k)
}

// ldexp is math.Ldexp(y, k) for y in exp's range (about 0.5..2): when the
// result is certainly normal, multiplying by the power of two 2^k is exact
// and gives the same bits as math.Ldexp, without its general-case work.
func ldexp(y float64, k int) float64 {
	if k > -1000 && k < 1000 {
		return y * math.Float64frombits(uint64(k+1023)<<52)
	}
	return math.Ldexp(y, k)
}
