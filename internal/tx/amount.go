package tx

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// UmycPerMyc is the number of base units (umyc) in one myc.
const UmycPerMyc = 1_000_000

// ParseAmount parses "5myc", "1.5myc" (at most 6 decimals) or "5000000umyc" into umyc.
// It rejects signs, spaces inside the number, missing units and values above 2^64-1 umyc.
func ParseAmount(s string) (uint64, error) {
	orig := s
	s = strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(s, "umyc"):
		n := strings.TrimSuffix(s, "umyc")
		if !allDigits(n) {
			return 0, fmt.Errorf("parse amount %q: want digits before umyc", orig)
		}
		v, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse amount %q: out of range", orig)
		}
		return v, nil
	case strings.HasSuffix(s, "myc"):
		n := strings.TrimSuffix(s, "myc")
		whole, frac, hasDot := strings.Cut(n, ".")
		if !allDigits(whole) || (hasDot && !allDigits(frac)) {
			return 0, fmt.Errorf("parse amount %q: want a decimal number before myc", orig)
		}
		if len(frac) > 6 {
			return 0, fmt.Errorf("parse amount %q: at most 6 decimals (1umyc = 0.000001myc)", orig)
		}
		w, err := strconv.ParseUint(whole, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse amount %q: out of range", orig)
		}
		var f uint64
		if frac != "" {
			f, _ = strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		}
		hi, lo := bits.Mul64(w, UmycPerMyc)
		if hi != 0 {
			return 0, fmt.Errorf("parse amount %q: out of range", orig)
		}
		sum, carry := bits.Add64(lo, f, 0)
		if carry != 0 {
			return 0, fmt.Errorf("parse amount %q: out of range", orig)
		}
		return sum, nil
	default:
		return 0, fmt.Errorf("parse amount %q: want a unit, e.g. 5myc or 5000000umyc", orig)
	}
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatAmount formats umyc as myc with six decimals, e.g. 1500000 → "1.500000myc".
func FormatAmount(u uint64) string {
	return fmt.Sprintf("%d.%06dmyc", u/UmycPerMyc, u%UmycPerMyc)
}
