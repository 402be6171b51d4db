package quant

import "math"

const groupMaxEps = float32(1e-15)

// quantizeBlockQ4_0 is ggml's quantize_row_q4_0_ref for one block.
func quantizeBlockQ4_0(x []float32, y []byte) {
	x = x[:QK4_0]
	y = y[:q4_0Bytes]
	var amax, max float32
	for _, v := range x {
		if amax < abs32(v) {
			amax = abs32(v)
			max = v
		}
	}
	d := max / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putU16(y, FP32ToFP16(d))
	for j := 0; j < QK4_0/2; j++ {
		x0 := float32(x[j] * id)
		x1 := float32(x[QK4_0/2+j] * id)
		xi0 := min(15, int32(int8(int32(x0+8.5))))
		xi1 := min(15, int32(int8(int32(x1+8.5))))
		y[2+j] = uint8(xi0) | uint8(xi1)<<4
	}
}

func dequantBlockQ4_0(x []byte, y []float32) {
	x = x[:q4_0Bytes]
	y = y[:QK4_0]
	d := fp16Table()[getU16(x)]
	for j := 0; j < QK4_0/2; j++ {
		y[j] = float32(int32(x[2+j]&0x0F)-8) * d
		y[j+QK4_0/2] = float32(int32(x[2+j]>>4)-8) * d
	}
}

// quantizeBlockQ8_0 is ggml's quantize_row_q8_0_ref for one block.
func quantizeBlockQ8_0(x []float32, y []byte) {
	x = x[:QK8_0]
	y = y[:q8_0Bytes]
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putU16(y, FP32ToFP16(d))
	for j, v := range x {
		y[2+j] = byte(int8(math.Round(float64(v * id))))
	}
}

func dequantBlockQ8_0(x []byte, y []float32) {
	x = x[:q8_0Bytes]
	y = y[:QK8_0]
	d := fp16Table()[getU16(x)]
	for j := range y {
		y[j] = float32(int8(x[2+j])) * d
	}
}

// makeQKX2Quants is ggml's make_qkx2_quants (use_mad false).
func makeQKX2Quants(nmax int32, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int) (scale, theMin float32) {
	n := len(x)
	mn, mx := x[0], x[0]
	sumW := weights[0]
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		if x[i] < mn {
			mn = x[i]
		}
		if x[i] > mx {
			mx = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if mn > 0 {
		mn = 0
	}
	if mx == mn {
		for i := range n {
			L[i] = 0
		}
		return 0, -mn
	}
	iscale := float32(nmax) / (mx - mn)
	scale = 1 / iscale
	var bestError float32
	for i := range n {
		l := nearestInt(iscale * (x[i] - mn))
		L[i] = uint8(max(0, min(nmax, l)))
		diff := float32(scale*float32(L[i])) + mn - x[i]
		diff = diff * diff
		bestError += float32(weights[i] * diff)
	}
	if nstep < 1 {
		return scale, -mn
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + float32(nmax)) / (mx - mn)
		var sumL, sumL2, sumXL float32
		for i := range n {
			l := nearestInt(iscale * (x[i] - mn))
			l = max(0, min(nmax, l))
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(float32(w*fl) * fl)
			sumXL += float32(float32(w*fl) * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := range n {
				diff := float32(thisScale*float32(Laux[i])) + thisMin - x[i]
				diff = diff * diff
				curError += float32(weights[i] * diff)
			}
			if curError < bestError {
				copy(L[:n], Laux[:n])
				bestError = curError
				scale = thisScale
				mn = thisMin
			}
		}
	}
	return scale, -mn
}

// scaleMinK4 is ggml's get_scale_min_k4.
func scaleMinK4(j int, q []byte) (d, m uint8) {
	q = q[:12]
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

// quantizeBlockQ4K is ggml's quantize_row_q4_K_ref for one block.
func quantizeBlockQ4K(x []float32, y []byte) {
	x = x[:QKK]
	y = y[:q4KBytes]
	var L [QKK]uint8
	var Laux [32]uint8
	var weights [32]float32
	var mins, scales [QKK / 32]float32
	var maxScale, maxMin float32
	for j := 0; j < QKK/32; j++ {
		var sumX2 float32
		for l := 0; l < 32; l++ {
			sumX2 += float32(x[32*j+l] * x[32*j+l])
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l := 0; l < 32; l++ {
			weights[l] = avX + abs32(x[32*j+l])
		}
		scales[j], mins[j] = makeQKX2Quants(15, x[32*j:32*j+32], weights[:], L[32*j:32*j+32], Laux[:], -1, 0.1, 20)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := y[4:16]
	for j := 0; j < QKK/32; j++ {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = (ls & 0xF) | ((lm & 0xF) << 4)
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	putU16(y[0:], FP32ToFP16(maxScale/63))
	putU16(y[2:], FP32ToFP16(maxMin/63))
	tab := fp16Table()
	for j := 0; j < QKK/32; j++ {
		s, m := scaleMinK4(j, sc)
		d := tab[getU16(y[0:])] * float32(s)
		if d == 0 {
			continue
		}
		dm := float32(tab[getU16(y[2:])] * float32(m))
		for ii := 0; ii < 32; ii++ {
			l := nearestInt((x[32*j+ii] + dm) / d)
			L[32*j+ii] = uint8(max(0, min(15, l)))
		}
	}
	q := y[16:]
	for j := 0; j < QKK; j += 64 {
		for l := 0; l < 32; l++ {
			q[l] = L[j+l] | L[j+l+32]<<4
		}
		q = q[32:]
	}
}

func dequantBlockQ4K(x []byte, y []float32) {
	x = x[:q4KBytes]
	y = y[:QKK]
	tab := fp16Table()
	d := tab[getU16(x[0:])]
	mn := tab[getU16(x[2:])]
	sc := x[4:16]
	q := x[16:]
	is := 0
	for j := 0; j < QKK; j += 64 {
		s, m := scaleMinK4(is, sc)
		d1, m1 := d*float32(s), mn*float32(m)
		s, m = scaleMinK4(is+1, sc)
		d2, m2 := d*float32(s), mn*float32(m)
		for l := 0; l < 32; l++ {
			y[j+l] = float32(d1*float32(q[l]&0xF)) - m1
			y[j+32+l] = float32(d2*float32(q[l]>>4)) - m2
		}
		q = q[32:]
		is += 2
	}
}

// makeQXQuants is ggml's make_qx_quants with rmse_type 1 and no weights.
func makeQXQuants(nmax int32, x []float32, L []int8) float32 {
	n := len(x)
	var mx, amax float32
	for i := range n {
		ax := abs32(x[i])
		if ax > amax {
			amax = ax
			mx = x[i]
		}
	}
	if amax < groupMaxEps {
		for i := range n {
			L[i] = 0
		}
		return 0
	}
	iscale := float32(-nmax) / mx
	var sumLX, sumL2 float32
	for i := range n {
		l := nearestInt(iscale * x[i])
		l = max(-nmax, min(nmax-1, l))
		L[i] = int8(l + nmax)
		w := float32(x[i] * x[i])
		fl := float32(l)
		sumLX += float32(float32(w*x[i]) * fl)
		sumL2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + float32(0.1*float32(is))) / mx
		sumLX, sumL2 = 0, 0
		for i := range n {
			l := nearestInt(iscale * x[i])
			l = max(-nmax, min(nmax-1, l))
			w := float32(x[i] * x[i])
			fl := float32(l)
			sumLX += float32(float32(w*x[i]) * fl)
			sumL2 += float32(float32(w*fl) * fl)
		}
		if sumL2 > 0 && float32(sumLX*sumLX) > float32(best*sumL2) {
			for i := range n {
				l := nearestInt(iscale * x[i])
				L[i] = int8(nmax + max(-nmax, min(nmax-1, l)))
			}
			scale = sumLX / sumL2
			best = scale * sumLX
		}
	}
	return scale
}

// quantizeBlockQ6K is ggml's quantize_row_q6_K_ref for one block.
func quantizeBlockQ6K(x []float32, y []byte) {
	x = x[:QKK]
	y = y[:q6KBytes]
	var L [QKK]int8
	var scales [QKK / 16]float32
	var maxScale, maxAbsScale float32
	for ib := 0; ib < QKK/16; ib++ {
		scale := makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16])
		scales[ib] = scale
		if abs32(scale) > maxAbsScale {
			maxAbsScale = abs32(scale)
			maxScale = scale
		}
	}
	ql := y[0:128]
	qh := y[128:192]
	sc := y[192:208]
	if maxAbsScale < groupMaxEps {
		clear(y)
		return
	}
	iscale := -128 / maxScale
	putU16(y[208:], FP32ToFP16(1/iscale))
	dd := fp16Table()[getU16(y[208:])]
	for ib := 0; ib < QKK/16; ib++ {
		sc[ib] = byte(int8(min(127, nearestInt(iscale*scales[ib]))))
	}
	for j := 0; j < QKK/16; j++ {
		d := dd * float32(int8(sc[j]))
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := nearestInt(x[16*j+ii] / d)
			l = max(-32, min(31, l))
			L[16*j+ii] = int8(l + 32)
		}
	}
	for j := 0; j < QKK; j += 128 {
		for l := 0; l < 32; l++ {
			q1 := uint8(L[j+l]) & 0xF
			q2 := uint8(L[j+l+32]) & 0xF
			q3 := uint8(L[j+l+64]) & 0xF
			q4 := uint8(L[j+l+96]) & 0xF
			ql[l] = q1 | q3<<4
			ql[l+32] = q2 | q4<<4
			qh[l] = uint8(L[j+l])>>4 | (uint8(L[j+l+32])>>4)<<2 | (uint8(L[j+l+64])>>4)<<4 | (uint8(L[j+l+96])>>4)<<6
		}
		ql = ql[64:]
		qh = qh[32:]
	}
}

func dequantBlockQ6K(x []byte, y []float32) {
	x = x[:q6KBytes]
	y = y[:QKK]
	d := fp16Table()[getU16(x[208:])]
	ql := x[0:128]
	qh := x[128:192]
	sc := x[192:208]
	for n := 0; n < QKK; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int32((ql[l]&0xF)|((qh[l]>>0)&3)<<4) - 32
			q2 := int32((ql[l+32]&0xF)|((qh[l]>>2)&3)<<4) - 32
			q3 := int32((ql[l]>>4)|((qh[l]>>4)&3)<<4) - 32
			q4 := int32((ql[l+32]>>4)|((qh[l]>>6)&3)<<4) - 32
			y[n+l] = float32(d*float32(int8(sc[is]))) * float32(q1)
			y[n+l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			y[n+l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			y[n+l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}
