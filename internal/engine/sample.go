package engine

import (
	"cmp"
	"math"
	"slices"

	"github.com/mycel-network/mycel/internal/detmath"
)

// Sampling controls how the next token is chosen. The zero value is greedy
// decoding (Temperature 0) without penalties.
type Sampling struct {
	// Temperature divides the logits; <= 0 means greedy (argmax, lowest id
	// on ties).
	Temperature float32
	// TopP keeps the smallest set of most likely tokens whose probability
	// sum reaches TopP; 0 or >= 1 disables it.
	TopP float32
	// MinP drops tokens whose probability is below MinP times the most
	// likely token's; 0 disables it.
	MinP float32
	// RepeatPenalty divides positive (multiplies negative) logits of tokens
	// among the last RepeatLastN tokens of prompt and output; 0 or 1
	// disables it.
	RepeatPenalty float32
	// RepeatLastN is the penalty window; 0 means 64, as llama.cpp.
	RepeatLastN int
	// TopK keeps the K most likely tokens; 0 disables it.
	TopK int
	// Seed seeds the sampler's counter-based generator.
	Seed uint64
}

// TopLogprob is one of the most likely tokens at a position.
type TopLogprob struct {
	ID      int32   `json:"id"`
	Logprob float32 `json:"logprob"`
}

// logSoftmax returns the log-sum-exp of logits: max plus the log of the sum
// of exp(l-max) taken in index order in float64. Log-probabilities are then
// float32(l - lse).
func logSumExp(logits []float32) float64 {
	mx := math.Inf(-1)
	for _, l := range logits {
		mx = math.Max(mx, float64(l))
	}
	var sum float64
	for _, l := range logits {
		sum += detmath.Exp(float64(l) - mx)
	}
	return mx + math.Log(sum)
}

func logprobOf(logits []float32, lse float64, id int32) float32 {
	return float32(float64(logits[id]) - lse)
}

// topLogprobs returns the k most likely tokens (highest logit first, lowest
// id on ties) with their log-probabilities, in dst's storage.
func topLogprobs(dst []TopLogprob, logits []float32, lse float64, k int) []TopLogprob {
	if k <= 0 {
		return dst[:0]
	}
	k = min(k, len(logits))
	dst = dst[:0]
	// Insertion into a small sorted list: O(V*k) with k small.
	less := func(a, b int32) bool { // a ranks before b
		return logits[a] > logits[b] || (logits[a] == logits[b] && a < b)
	}
	ids := make([]int32, 0, k+1)
	for i := range logits {
		id := int32(i)
		if len(ids) == k && !less(id, ids[k-1]) {
			continue
		}
		pos, _ := slices.BinarySearchFunc(ids, id, func(e, t int32) int {
			if less(e, t) {
				return -1
			}
			return 1
		})
		ids = slices.Insert(ids, pos, id)
		if len(ids) > k {
			ids = ids[:k]
		}
	}
	for _, id := range ids {
		dst = append(dst, TopLogprob{ID: id, Logprob: logprobOf(logits, lse, id)})
	}
	return dst
}

// splitmix64 is the SplitMix64 finaliser; rand(seed, n) is the n-th draw of a
// request's generator.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// uniform returns a float64 in [0, 1) for draw n of seed.
func uniform(seed uint64, n uint64) float64 {
	return float64(splitmix64(splitmix64(seed)^n)>>11) / (1 << 53)
}

type candidate struct {
	id int32
	l  float32
	p  float64
}

// sampler chooses tokens; it keeps scratch buffers between calls.
type sampler struct {
	cands []candidate
	seen  []int32
	pen   []float32
}

// sample picks the next token from logits (left unchanged). history holds prompt and output tokens; n is
// the index of this draw.
func (s *sampler) sample(logits []float32, sp Sampling, history []int32, n uint64) int32 {
	if sp.RepeatPenalty != 0 && sp.RepeatPenalty != 1 {
		last := sp.RepeatLastN
		if last == 0 {
			last = 64
		}
		start := max(0, len(history)-last)
		s.pen = append(s.pen[:0], logits...)
		logits = s.pen
		s.seen = s.seen[:0]
		for _, id := range history[start:] {
			if id < 0 || int(id) >= len(logits) || slices.Contains(s.seen, id) {
				continue
			}
			s.seen = append(s.seen, id) // penalise each distinct token once
			if l := logits[id]; l > 0 {
				logits[id] = l / sp.RepeatPenalty
			} else {
				logits[id] = l * sp.RepeatPenalty
			}
		}
	}
	if sp.Temperature <= 0 {
		return argmax(logits)
	}
	// Tokens more than 40*max(1, T) below the best logit have relative
	// probability under e^-40 at every stage (filters at temperature 1,
	// sampling at T): dropping them saves sorting the whole vocabulary at a
	// cost far below float64 resolution.
	mx := logits[0]
	for _, l := range logits {
		mx = max(mx, l)
	}
	floor := mx - 40*max(1, sp.Temperature)
	c := s.cands[:0]
	for i, l := range logits {
		if l >= floor {
			c = append(c, candidate{id: int32(i), l: l})
		}
	}
	if len(c) == 0 { // NaN logits (a broken model): fall back to greedy
		s.cands = c
		return argmax(logits)
	}
	order := func(a, b candidate) int {
		if r := cmp.Compare(b.l, a.l); r != 0 {
			return r
		}
		return cmp.Compare(a.id, b.id)
	}
	if sp.TopK > 0 && sp.TopK < len(c) {
		// Partial selection then sort of the kept prefix.
		c = selectTopK(c, sp.TopK, order)
	}
	slices.SortFunc(c, order)
	// Probabilities before temperature, as llama.cpp's filters see them.
	probs(c, 1)
	if sp.TopP > 0 && sp.TopP < 1 {
		var cum float64
		for i := range c {
			cum += c[i].p
			if cum >= float64(sp.TopP) {
				c = c[:i+1]
				break
			}
		}
	}
	if sp.MinP > 0 {
		th := c[0].p * float64(sp.MinP)
		keep := 1
		for keep < len(c) && c[keep].p >= th {
			keep++
		}
		c = c[:keep]
	}
	probs(c, sp.Temperature)
	u := uniform(sp.Seed, n)
	var cum float64
	for _, cd := range c {
		cum += cd.p
		if u < cum {
			s.cands = c
			return cd.id
		}
	}
	s.cands = c
	return c[len(c)-1].id
}

// probs sets c[i].p to the softmax of c[i].l/temp; c is sorted by logit.
func probs(c []candidate, temp float32) {
	mx := float64(c[0].l) / float64(temp)
	var sum float64
	for i := range c {
		c[i].p = detmath.Exp(float64(c[i].l)/float64(temp) - mx)
		sum += c[i].p
	}
	for i := range c {
		c[i].p /= sum
	}
}

// selectTopK moves the k best candidates (by order, a total order) to the
// front and returns them, unsorted: quickselect with a middle pivot.
func selectTopK(c []candidate, k int, order func(a, b candidate) int) []candidate {
	lo, hi := 0, len(c)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		c[mid], c[hi] = c[hi], c[mid]
		piv := c[hi]
		st := lo
		for i := lo; i < hi; i++ {
			if order(c[i], piv) < 0 {
				c[st], c[i] = c[i], c[st]
				st++
			}
		}
		c[st], c[hi] = c[hi], c[st]
		switch {
		case st == k-1:
			return c[:k]
		case st < k-1:
			lo = st + 1
		default:
			hi = st - 1
		}
	}
	return c[:k]
}

// argmax returns the index of the largest logit (the lowest on ties).
func argmax(logits []float32) int32 {
	best := int32(0)
	for i, l := range logits {
		if l > logits[best] {
			best = int32(i)
		}
	}
	return best
}
