package demomodel

import (
	"math"
	"slices"
)

// csr is a sparse square matrix in compressed-row form.
type csr struct {
	n   int
	row []int32 // len n+1
	col []int32
	val []float64
}

// pairCounts counts (a, b) pairs and returns them as a CSR matrix of counts,
// columns sorted within each row.
func pairCounts(n int, pairs func(emit func(a, b int32))) *csr {
	m := map[uint64]float64{}
	pairs(func(a, b int32) { m[uint64(a)<<32|uint64(uint32(b))]++ })
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	c := &csr{n: n, row: make([]int32, n+1), col: make([]int32, len(keys)), val: make([]float64, len(keys))}
	for i, k := range keys {
		c.row[k>>32+1]++
		c.col[i] = int32(uint32(k))
		c.val[i] = m[k]
	}
	for i := 0; i < n; i++ {
		c.row[i+1] += c.row[i]
	}
	return c
}

// mul returns M·x for a dense vector x.
func (m *csr) mul(x, y []float64) {
	for r := 0; r < m.n; r++ {
		s := 0.0
		for i := m.row[r]; i < m.row[r+1]; i++ {
			s += float64(m.val[i] * x[m.col[i]])
		}
		y[r] = s
	}
}

// mulT returns Mᵀ·x.
func (m *csr) mulT(x, y []float64) {
	clear(y)
	for r := 0; r < m.n; r++ {
		xr := x[r]
		if xr == 0 {
			continue
		}
		for i := m.row[r]; i < m.row[r+1]; i++ {
			y[m.col[i]] += float64(m.val[i] * xr)
		}
	}
}

// orthonormalize makes the columns orthonormal in place (modified
// Gram-Schmidt, applied twice for accuracy). A column that vanishes is
// replaced by zeros.
func orthonormalize(cols [][]float64) {
	for j := range cols {
		for pass := 0; pass < 2; pass++ {
			for i := 0; i < j; i++ {
				axpy(-dot(cols[i], cols[j]), cols[i], cols[j])
			}
		}
		nrm := math.Sqrt(dot(cols[j], cols[j]))
		if nrm < 1e-300 {
			clear(cols[j])
			continue
		}
		inv := 1 / nrm
		for i := range cols[j] {
			cols[j][i] = float64(cols[j][i] * inv)
		}
	}
}

// truncatedSVD returns the top-k singular triplets of m by randomized
// subspace iteration: U and V as k columns of length n, singular values in
// decreasing order.
func truncatedSVD(m *csr, k, oversample, iters int, seed uint64) (u, v [][]float64, sigma []float64) {
	n := m.n
	kk := k + oversample
	rng := splitmix64{s: seed}
	q := make([][]float64, kk)
	z := make([][]float64, kk)
	for j := range q {
		q[j] = make([]float64, n)
		z[j] = make([]float64, n)
		omega := make([]float64, n)
		for i := range omega {
			omega[i] = rng.uniform()
		}
		m.mul(omega, q[j])
	}
	orthonormalize(q)
	for it := 0; it < iters; it++ {
		for j := range q {
			m.mulT(q[j], z[j])
		}
		orthonormalize(z)
		for j := range q {
			m.mul(z[j], q[j])
		}
		orthonormalize(q)
	}
	// B = Qᵀ M, so Bᵀ = Mᵀ Q = Z (columns); G = B Bᵀ = Zᵀ Z.
	for j := range q {
		m.mulT(q[j], z[j])
	}
	g := make([][]float64, kk)
	for i := range g {
		g[i] = make([]float64, kk)
	}
	for i := 0; i < kk; i++ {
		for j := i; j < kk; j++ {
			d := dot(z[i], z[j])
			g[i][j], g[j][i] = d, d
		}
	}
	lambda, e := jacobiEigen(g)
	order := make([]int, kk)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case lambda[a] > lambda[b]:
			return -1
		case lambda[a] < lambda[b]:
			return 1
		}
		return 0
	})
	u = make([][]float64, k)
	v = make([][]float64, k)
	sigma = make([]float64, k)
	for c := 0; c < k; c++ {
		ei := order[c]
		s := math.Sqrt(math.Max(lambda[ei], 0))
		sigma[c] = s
		u[c] = make([]float64, n)
		v[c] = make([]float64, n)
		for j := 0; j < kk; j++ {
			w := e[j][ei]
			axpy(w, q[j], u[c])
			axpy(w, z[j], v[c])
		}
		if s > 0 {
			inv := 1 / s
			for i := range v[c] {
				v[c][i] = float64(v[c][i] * inv)
			}
		}
	}
	return u, v, sigma
}

// jacobiEigen diagonalises the symmetric matrix a (destroyed) by cyclic
// Jacobi rotations: a = E diag(λ) Eᵀ, eigenvectors in the columns of E.
func jacobiEigen(a [][]float64) (lambda []float64, e [][]float64) {
	n := len(a)
	e = make([][]float64, n)
	for i := range e {
		e[i] = make([]float64, n)
		e[i][i] = 1
	}
	total := 0.0
	for i := 0; i < n; i++ {
		total += dot(a[i], a[i])
	}
	for sweep := 0; sweep < 60; sweep++ {
		off := 0.0
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				off += float64(a[i][j] * a[i][j])
			}
		}
		if off <= 1e-28*total {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				apq := a[p][q]
				if math.Abs(apq) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / float64(2*apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(float64(theta*theta)+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(float64(t*t)+1)
				s := float64(t * c)
				for k := 0; k < n; k++ {
					akp, akq := a[k][p], a[k][q]
					a[k][p] = float64(c*akp) - float64(s*akq)
					a[k][q] = float64(s*akp) + float64(c*akq)
				}
				for k := 0; k < n; k++ {
					apk, aqk := a[p][k], a[q][k]
					a[p][k] = float64(c*apk) - float64(s*aqk)
					a[q][k] = float64(s*apk) + float64(c*aqk)
				}
				for k := 0; k < n; k++ {
					ekp, ekq := e[k][p], e[k][q]
					e[k][p] = float64(c*ekp) - float64(s*ekq)
					e[k][q] = float64(s*ekp) + float64(c*ekq)
				}
			}
		}
	}
	lambda = make([]float64, n)
	for i := range lambda {
		lambda[i] = a[i][i]
	}
	return lambda, e
}
