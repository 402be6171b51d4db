package engine

import (
	"math"

	"github.com/mycel-network/mycel/internal/detmath"
	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/quant"
)

// kvCache holds one sequence's keys and values as float16 (as llama.cpp's
// default cache): [layer][position][kvDim].
type kvCache struct {
	k, v  []uint16
	cap   int // positions
	kvDim int
}

func newKVCache(m *Model, positions int) *kvCache {
	kvDim := m.hp.nHeadKV * m.hp.headDim
	n := m.hp.nLayer * positions * kvDim
	return &kvCache{k: make([]uint16, n), v: make([]uint16, n), cap: positions, kvDim: kvDim}
}

func (c *kvCache) at(buf []uint16, layer, pos int) []uint16 {
	off := (layer*c.cap + pos) * c.kvDim
	return buf[off : off+c.kvDim : off+c.kvDim]
}

// fwdToken is one token of a forward batch.
type fwdToken struct {
	id     int32
	pos    int
	kv     *kvCache
	logits bool // compute logits for this token
}

// scratch holds the buffers of forward passes, reused between steps.
type scratch struct {
	n                            int // tokens the buffers hold
	x, xn, q, k, v, att, o, g, u []float32
	logits                       []float32 // [tokens wanting logits][vocab]
	vecs                         []quant.Vec
	scores                       [][]float32 // per worker, attention scores
	logitIdx                     []int
}

func (s *scratch) ensure(m *Model, n, nLogits, threads int) {
	hp := &m.hp
	if n > s.n {
		qDim, kvDim := hp.nHead*hp.headDim, hp.nHeadKV*hp.headDim
		s.x = make([]float32, n*hp.nEmbd)
		s.xn = make([]float32, n*hp.nEmbd)
		s.q = make([]float32, n*qDim)
		s.att = make([]float32, n*qDim)
		s.k = make([]float32, n*kvDim)
		s.v = make([]float32, n*kvDim)
		s.o = make([]float32, n*hp.nEmbd)
		s.g = make([]float32, n*hp.nFF)
		s.u = make([]float32, n*hp.nFF)
		s.vecs = make([]quant.Vec, n)
		s.n = n
	}
	if len(s.logits) < nLogits*hp.nVocab {
		s.logits = make([]float32, nLogits*hp.nVocab)
	}
	for len(s.scores) < threads {
		s.scores = append(s.scores, nil)
	}
}

// forward runs one forward pass over toks, writing their keys and values
// into their caches. For tokens with logits set, the logits are in
// s.logits, in the order those tokens appear in toks; forward returns how
// many there are.
func (m *Model) forward(s *scratch, p *pool, toks []fwdToken) int {
	hp := &m.hp
	n := len(toks)
	nLogits := 0
	for _, t := range toks {
		if t.logits {
			nLogits++
		}
	}
	s.ensure(m, n, nLogits, p.threads)
	d := hp.nEmbd
	qDim, kvDim := hp.nHead*hp.headDim, hp.nHeadKV*hp.headDim

	p.runCost(n, d, func(_, b int) {
		if err := quant.Dequantize(m.embd.typ, m.embd.row(int(toks[b].id)), s.x[b*d:(b+1)*d]); err != nil {
			panic("engine: embedding row: " + err.Error()) // shapes validated at load
		}
	})
	for li := range m.layers {
		l := &m.layers[li]
		p.runCost(n, 4*d, func(_, b int) {
			rmsNorm(s.xn[b*d:(b+1)*d], s.x[b*d:(b+1)*d], l.attnNorm, hp.eps)
			s.vecs[b].Load(s.xn[b*d : (b+1)*d])
		})
		m.matmul(p, s, &l.wq, n, s.q, qDim, l.bq)
		m.matmul(p, s, &l.wk, n, s.k, kvDim, l.bk)
		m.matmul(p, s, &l.wv, n, s.v, kvDim, l.bv)
		p.runCost(n, 8*(qDim+kvDim), func(_, b int) {
			t := &toks[b]
			q := s.q[b*qDim : (b+1)*qDim]
			k := s.k[b*kvDim : (b+1)*kvDim]
			var cs [maxRopeHalf][2]float32
			rot := m.ropeTable(cs[:], t.pos)
			for h := 0; h < hp.nHead; h++ {
				m.rope(q[h*hp.headDim:(h+1)*hp.headDim], rot)
			}
			for h := 0; h < hp.nHeadKV; h++ {
				m.rope(k[h*hp.headDim:(h+1)*hp.headDim], rot)
			}
			toFP16(t.kv.at(t.kv.k, li, t.pos), k)
			toFP16(t.kv.at(t.kv.v, li, t.pos), s.v[b*kvDim:(b+1)*kvDim])
		})
		p.runCost(n*hp.nHead, 2*hp.headDim*(toks[n-1].pos+1), func(w, i int) {
			b, h := i/hp.nHead, i%hp.nHead
			m.attention(s, w, &toks[b], li, h, s.q[b*qDim+h*hp.headDim:b*qDim+(h+1)*hp.headDim],
				s.att[b*qDim+h*hp.headDim:b*qDim+(h+1)*hp.headDim])
		})
		p.runCost(n, qDim, func(_, b int) { s.vecs[b].Load(s.att[b*qDim : (b+1)*qDim]) })
		m.matmul(p, s, &l.wo, n, s.o, d, nil)
		p.runCost(n, 5*d, func(_, b int) {
			x := s.x[b*d : (b+1)*d]
			for i, o := range s.o[b*d : (b+1)*d] {
				x[i] += o
			}
			rmsNorm(s.xn[b*d:(b+1)*d], x, l.ffnNorm, hp.eps)
			s.vecs[b].Load(s.xn[b*d : (b+1)*d])
		})
		m.matmul(p, s, &l.gate, n, s.g, hp.nFF, nil)
		m.matmul(p, s, &l.up, n, s.u, hp.nFF, nil)
		p.runCost(n, 20*hp.nFF, func(_, b int) {
			g := s.g[b*hp.nFF : (b+1)*hp.nFF]
			u := s.u[b*hp.nFF : (b+1)*hp.nFF]
			for i := range g {
				g[i] = float32(silu(g[i]) * u[i])
			}
			s.vecs[b].Load(g)
		})
		m.matmul(p, s, &l.down, n, s.o, d, nil)
		for b := 0; b < n; b++ {
			x := s.x[b*d : (b+1)*d]
			for i, o := range s.o[b*d : (b+1)*d] {
				x[i] += o
			}
		}
	}
	if nLogits == 0 {
		return 0
	}
	// Final norm and output head for the tokens that want logits.
	s.logitIdx = s.logitIdx[:0]
	for b, t := range toks {
		if t.logits {
			s.logitIdx = append(s.logitIdx, b)
		}
	}
	p.runCost(nLogits, 5*d, func(_, j int) {
		b := s.logitIdx[j]
		rmsNorm(s.xn[j*d:(j+1)*d], s.x[b*d:(b+1)*d], m.outNrm, hp.eps)
		s.vecs[j].Load(s.xn[j*d : (j+1)*d])
	})
	m.matmul(p, s, &m.output, nLogits, s.logits, hp.nVocab, nil)
	return nLogits
}

// tileBytes is the weight bytes one task of a matrix product covers: the
// task's rows stay in L1 cache while every vector of the batch is multiplied
// with them, so each activation vector is read once per tile rather than
// once per row.
const tileBytes = 32 << 10

// matmul computes out[b*stride+r] = W[r]·vec[b] (+bias[r]) for b < n. Each
// output element equals one quant.DotVec call (quant.DotVec4 and
// quant.DotVec4x4 are bit-identical for groups of four vectors and of four
// rows × four vectors); tiling changes only which goroutine computes it and
// when.
func (m *Model) matmul(p *pool, s *scratch, w *matrix, n int, out []float32, stride int, bias []float32) {
	p.runCost(n, 4*w.cols, func(_, b int) { s.vecs[b].Prepare(w.typ) })
	rows := max(1, min(64, tileBytes/w.rowBytes))
	if n >= 4 {
		rows = max(4, rows&^3) // whole 4×4 tiles
	}
	if n == 1 {
		rows = 16 // one vector: no reuse to gain, keep tasks small
	}
	tasks := (w.rows + rows - 1) / rows
	p.runCost(tasks, rows*w.cols*n, func(_, t int) {
		r0, r1 := t*rows, min((t+1)*rows, w.rows)
		// Rows in groups of four (quant.DotVec4xN) for blocks of vectors
		// whose activations stay in L1 cache while the rows' weights are
		// reused; leftover rows through DotVec4.
		r4 := r0 + (r1-r0)&^3
		vb := vecBlock(w.typ)
		n4 := n &^ 3
		for b0 := 0; b0 < n4; b0 += vb {
			e := min(b0+vb, n4)
			for r := r0; r < r4; r += 4 {
				quant.DotVec4xN(w.typ, w.rows4(r), w.rowBytes, s.vecs[b0:e], out[b0*stride+r:], stride)
			}
			var res [4]float32
			for g := b0; g < e; g += 4 {
				vs := [4]*quant.Vec{&s.vecs[g], &s.vecs[g+1], &s.vecs[g+2], &s.vecs[g+3]}
				for r := r4; r < r1; r++ {
					quant.DotVec4(w.typ, w.row(r), &vs, &res)
					for i, x := range res {
						out[(g+i)*stride+r] = x
					}
				}
			}
		}
		b := n4
		for ; b < n; b++ {
			quant.DotRows(w.typ, w.data[r0*w.rowBytes:r1*w.rowBytes], w.rowBytes, &s.vecs[b], out[b*stride+r0:b*stride+r1])
		}
		if bias != nil {
			for b := 0; b < n; b++ {
				o := out[b*stride : b*stride+w.rows]
				for r := r0; r < r1; r++ {
					o[r] += bias[r]
				}
			}
		}
	})
}

// vecBlock is how many activation vectors one pass over a tile's rows
// covers: their activations stay in L1 cache (F32 vectors are large), and
// Q4_K rows decode their scales once per block.
func vecBlock(t gguf.Type) int {
	switch t {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16:
		return 4
	case gguf.TypeQ4_K:
		return 16
	}
	return 8
}

// rmsNorm writes x / sqrt(mean(x²) + eps) * w to dst, as ggml: squares are
// summed in index order in float64.
func rmsNorm(dst, x, w []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(float32(v * v))
	}
	mean := float32(sum / float64(len(x)))
	scale := float32(1 / math.Sqrt(float64(mean+eps)))
	w = w[:len(x)]
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float32(v*scale) * w[i]
	}
}

func silu(x float32) float32 {
	return x / (1 + float32(detmath.Exp(float64(-x))))
}

// maxRopeHalf is the largest rope dimension / 2 whose cos/sin table is
// kept on the stack; larger ones are allocated.
const maxRopeHalf = 128

// ropeTable returns cos and sin of pos·invFreq[i] for the rotated pairs of
// one position (the same for every head), in buf if it is large enough.
func (m *Model) ropeTable(buf [][2]float32, pos int) [][2]float32 {
	half := m.hp.ropeDim / 2
	if len(buf) < half {
		buf = make([][2]float32, half)
	}
	buf = buf[:half]
	for i := range buf {
		theta := float64(float64(pos) * m.invFreq[i])
		buf[i] = [2]float32{float32(math.Cos(theta)), float32(math.Sin(theta))}
	}
	return buf
}

// rope rotates one head vector in place with the table of its position:
// adjacent pairs (x[2i], x[2i+1]) for llama, half-split pairs (x[i],
// x[i+n/2]) for qwen2 (NEOX layout). Only the first ropeDim elements rotate.
func (m *Model) rope(x []float32, rot [][2]float32) {
	half := len(rot)
	for i, cs := range rot {
		c, sn := cs[0], cs[1]
		var a, b *float32
		if m.hp.ropeNeox {
			a, b = &x[i], &x[i+half]
		} else {
			a, b = &x[2*i], &x[2*i+1]
		}
		x0, x1 := *a, *b
		*a = float32(x0*c) - float32(x1*sn)
		*b = float32(x0*sn) + float32(x1*c)
	}
}

// attention computes one head of one token: softmax(q·K/sqrt(d)) V over the
// sequence's positions 0..pos, in position order (scores as quant.DotF16,
// the value sum as quant.AxpyF16 position by position).
func (m *Model) attention(s *scratch, worker int, t *fwdToken, li, h int, q, out []float32) {
	hd := m.hp.headDim
	kvh := h / (m.hp.nHead / m.hp.nHeadKV)
	n := t.pos + 1
	if cap(s.scores[worker]) < n {
		s.scores[worker] = make([]float32, n, max(n, 256))
	}
	sc := s.scores[worker][:n]
	scale := float32(1 / math.Sqrt(float64(hd)))
	mx := float32(math.Inf(-1))
	// Keys (and values) of this KV head at positions 0..n-1 are kvDim
	// apart in the cache.
	base := (li*t.kv.cap)*t.kv.kvDim + kvh*hd
	quant.DotF16Rows(t.kv.k[base:], t.kv.kvDim, q, sc)
	for j, d := range sc {
		v := d * scale
		sc[j] = v
		if v > mx {
			mx = v
		}
	}
	var sum float32
	for j := range sc {
		e := float32(detmath.Exp(float64(sc[j] - mx)))
		sc[j] = e
		sum += e
	}
	clear(out)
	quant.AxpyF16Rows(out, t.kv.v[base:], t.kv.kvDim, sc)
	inv := 1 / sum
	for i := range out {
		out[i] *= inv
	}
}

func toFP16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = quant.FP32ToFP16(v)
	}
}
