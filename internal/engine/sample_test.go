package engine

import "math"

func logf(x float64) float64 { return math.Log(x) }
