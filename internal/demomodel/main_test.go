package demomodel

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The models are generated once per test binary into a temporary directory.
var (
	genOnce sync.Once
	genDir  string
	genOut  []Generated
	genErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if genDir != "" {
		os.RemoveAll(genDir)
	}
	os.Exit(code)
}

func generated(t *testing.T) map[string]Generated {
	t.Helper()
	genOnce.Do(func() {
		genDir, genErr = os.MkdirTemp("", "demomodel")
		if genErr == nil {
			// The peer-check models too: they only re-encode the reference
			// model's weights, which costs about a second.
			genOut, genErr = generate(context.Background(), filepath.Join(genDir, "a"), append(modelFiles(), peerFiles()...), nil)
		}
	})
	if genErr != nil {
		t.Fatalf("Generate: %v", genErr)
	}
	out := map[string]Generated{}
	for _, g := range genOut {
		out[g.Name] = g
	}
	return out
}

// corpusWindows returns fixed slices of the training stream.
func corpusWindows(t *testing.T, n int) [][]int32 {
	t.Helper()
	text, err := Corpus()
	if err != nil {
		t.Fatal(err)
	}
	st, err := newStats(text)
	if err != nil {
		t.Fatal(err)
	}
	// Eight windows spread evenly over the stream.
	var windows [][]int32
	for i := 0; i < 8; i++ {
		off := (len(st.stream) - n) * (2*i + 1) / 16
		windows = append(windows, st.stream[off:off+n])
	}
	return windows
}

// TestCrossEntropy runs every generated model through the naive float64
// forward pass and checks that it predicts the corpus far better than chance
// and than the same weights shuffled, that quantisation costs little and
// that the substitute is measurably worse.
func TestCrossEntropy(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: naive forward passes")
	}
	gs := generated(t)
	windows := corpusWindows(t, 64)
	bits := map[string]float64{}
	models := map[string]*naiveModel{}
	lps := map[string][][][]float64{} // model, window, position
	for _, name := range Names() {
		models[name] = loadNaive(t, gs[name].Path)
		for _, w := range windows {
			lps[name] = append(lps[name], models[name].logProbs(w))
		}
		bits[name] = bitsPerToken(windows, lps[name])
		t.Logf("%-15s %.3f bits/token", name, bits[name])
	}
	shuffled := models["mycel-ref"].shuffled(9)
	var slp [][][]float64
	for _, w := range windows[:2] {
		slp = append(slp, shuffled.logProbs(w))
	}
	bits["shuffled"] = bitsPerToken(windows[:2], slp)
	t.Logf("%-15s %.3f bits/token", "shuffled ref", bits["shuffled"])
	uniform := math.Log2(float64(models["mycel-ref"].vocab))
	t.Logf("%-15s %.3f bits/token", "uniform", uniform)

	ref := bits["mycel-ref"]
	tests := []struct {
		what string
		ok   bool
	}{
		{"ref at least 4 bits below uniform", ref < uniform-4},
		{"shuffled ref at least 5 bits above ref", bits["shuffled"] > ref+5},
		{"q8 within 0.05 bits of ref", math.Abs(bits["mycel-ref-q8"]-ref) < 0.05},
		{"q4km within 0.3 bits of ref", math.Abs(bits["mycel-ref-q4km"]-ref) < 0.3},
		{"sub at least 0.5 bits worse than ref", bits["mycel-sub"] > ref+0.5},
		{"sub at least 3 bits below uniform", bits["mycel-sub"] < uniform-3},
	}
	for _, tc := range tests {
		if !tc.ok {
			t.Errorf("want %s; got %v", tc.what, bits)
		}
	}

	// The substitute's next-token distributions differ from the reference's.
	kl, n := 0.0, 0
	for wi := range windows {
		a, b := lps["mycel-ref"][wi], lps["mycel-sub"][wi]
		for i := range a {
			for j := range a[i] {
				kl += math.Exp(a[i][j]) * (a[i][j] - b[i][j]) / math.Ln2
			}
			n++
		}
	}
	t.Logf("mean KL(ref || sub) = %.3f bits", kl/float64(n))
	if kl/float64(n) < 0.5 {
		t.Errorf("mean KL(ref || sub) = %.3f bits, want >= 0.5", kl/float64(n))
	}
}

// TestPreviousTokenHead checks the wiring of layer 0's head 0 in the
// reference model: it attends to the previous position, whatever the tokens.
func TestPreviousTokenHead(t *testing.T) {
	gs := generated(t)
	tests := []struct {
		model string
		want  bool
	}{
		{"mycel-ref", true},
		{"mycel-ref-q4km", true},
		{"mycel-sub", true},
		{"mycel-ref-qwen2", true}, // rows permuted for NEOX RoPE, biases added
	}
	w := corpusWindows(t, 24)[2]
	for _, tc := range tests {
		m := loadNaive(t, gs[tc.model].Path)
		minPrev := 1.0
		m.onAttention = func(layer, head, pos int, ws []float64) {
			if layer == 0 && head == 0 && pos > 0 {
				minPrev = math.Min(minPrev, ws[pos-1])
			}
		}
		m.logProbs(w)
		t.Logf("%s: least attention of head 0 to the previous position: %.4f", tc.model, minPrev)
		if got := minPrev > 0.99; got != tc.want {
			t.Errorf("%s: least weight on the previous position %.4f; want > 0.99: %v", tc.model, minPrev, tc.want)
		}
	}
}
