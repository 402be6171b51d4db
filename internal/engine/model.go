package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"unsafe"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/detmath"
	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/quant"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// LoadOptions configure Load.
type LoadOptions struct {
	// Logger receives load diagnostics; nil discards them.
	Logger *slog.Logger
	// Progress, if set, is called while the file is brought into memory.
	Progress func(done, total int64)
	// ContextLength overrides the model's context length when > 0 and
	// smaller than the trained length.
	ContextLength int
}

// ModelInfo describes a loaded model.
type ModelInfo struct {
	Path          string
	Name          string
	Arch          string
	Params        int64 // number of weights
	Quant         string
	ContextLength int
	EmbeddingDim  int
	Layers        int
	Heads         int
	KVHeads       int
	VocabSize     int
	FileBytes     int64
	// WeightBytesPerToken is how many bytes of weights one decode step
	// reads (every matrix once; the embedding reads one row).
	WeightBytesPerToken int64
}

type hparams struct {
	arch      string
	nEmbd     int
	nLayer    int
	nHead     int
	nHeadKV   int
	headDim   int
	nFF       int
	nCtx      int
	nVocab    int
	eps       float32
	ropeBase  float64
	ropeDim   int
	ropeScale float64 // linear: positions are multiplied by this
	ropeNeox  bool
}

// matrix is a weight matrix used in place: rows of cols elements of typ.
type matrix struct {
	name     string
	typ      gguf.Type
	rows     int
	cols     int
	rowBytes int
	data     []byte
}

func (w *matrix) row(i int) []byte { return w.data[i*w.rowBytes : (i+1)*w.rowBytes] }

// rows4 returns rows i..i+3, which are consecutive in the data.
func (w *matrix) rows4(i int) []byte { return w.data[i*w.rowBytes : (i+4)*w.rowBytes] }

type layer struct {
	attnNorm       []float32
	wq, wk, wv, wo matrix
	bq, bk, bv     []float32
	ffnNorm        []float32
	gate, up, down matrix
}

// Model is a loaded GGUF model. Its weights are used in place from the
// memory-mapped file. A Model is safe for concurrent use.
type Model struct {
	file   *gguf.File
	path   string
	log    *slog.Logger
	hp     hparams
	embd   matrix
	outNrm []float32
	output matrix
	layers []layer
	// invFreq[i] is the rotation frequency of pair i (scaling applied).
	invFreq []float64
	vocab   vocabulary // m.tok, or nil
	tok     *tokenizer.Tokenizer
	chatFmt chat.Format
	chatErr error
	info    ModelInfo

	shaOnce sync.Once
	sha     string
	shaErr  error
}

// Load maps the GGUF file at path, validates every tensor against the
// architecture's hyper-parameters and returns the model.
func Load(path string, opts LoadOptions) (*Model, error) {
	var gopts []gguf.OpenOption
	if opts.Progress != nil {
		gopts = append(gopts, gguf.WithProgress(opts.Progress))
	}
	f, err := gguf.Open(path, gopts...)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := newModel(f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	m.path = path
	m.info.Path = path
	if st, err := os.Stat(path); err == nil {
		m.info.FileBytes = st.Size()
	}
	return m, nil
}

// FromFile builds a model from an already opened GGUF file (for example one
// from gguf.Parse). The model does not own f: closing the model does not
// close it.
func FromFile(f *gguf.File, opts LoadOptions) (*Model, error) {
	m, err := newModel(f, opts)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m.file = nil
	return m, nil
}

func newModel(f *gguf.File, opts LoadOptions) (*Model, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Model{file: f, log: log}
	if err := m.readHparams(f, opts); err != nil {
		return nil, err
	}
	if err := m.loadTensors(f); err != nil {
		return nil, err
	}
	tok, err := loadTokenizer(f)
	if err != nil {
		return nil, err
	}
	if tok != nil {
		if tok.VocabSize() > m.hp.nVocab {
			return nil, fmt.Errorf("tokenizer has %d tokens but token_embd.weight has %d rows", tok.VocabSize(), m.hp.nVocab)
		}
		m.tok, m.vocab = tok, tok
	}
	m.chatFmt, m.chatErr = chat.FromGGUF(f)
	m.fillInfo(f)
	log.Debug("model loaded", "arch", m.info.Arch, "params", m.info.Params, "quant", m.info.Quant,
		"layers", m.info.Layers, "context_length", m.info.ContextLength, "vocab_size", m.info.VocabSize)
	return m, nil
}

// Close releases the mapped file. The model must not be used afterwards.
func (m *Model) Close() error {
	if m.file == nil {
		return nil
	}
	err := m.file.Close()
	m.file = nil
	return err
}

// Info describes the model.
func (m *Model) Info() ModelInfo { return m.info }

// SHA256 returns the hex sha256 of the model file, computed on first use.
func (m *Model) SHA256() (string, error) {
	m.shaOnce.Do(func() {
		if m.path == "" {
			m.shaErr = fmt.Errorf("model sha256: model was not loaded from a file")
			return
		}
		f, err := os.Open(m.path)
		if err != nil {
			m.shaErr = fmt.Errorf("model sha256: %w", err)
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			m.shaErr = fmt.Errorf("model sha256: %w", err)
			return
		}
		m.sha = hex.EncodeToString(h.Sum(nil))
	})
	return m.sha, m.shaErr
}

func metaUint(f *gguf.File, key string, def int, required bool) (int, error) {
	if _, ok := f.Get(key); !ok {
		if required {
			return 0, fmt.Errorf("metadata %s: missing", key)
		}
		return def, nil
	}
	v, err := f.Uint(key)
	if err != nil {
		return 0, err
	}
	if v > 1<<31 {
		return 0, fmt.Errorf("metadata %s: %d is out of range", key, v)
	}
	return int(v), nil
}

func metaFloat(f *gguf.File, key string, def float64) (float64, error) {
	if _, ok := f.Get(key); !ok {
		return def, nil
	}
	v, err := f.Float(key)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("metadata %s: %v is not finite", key, v)
	}
	return v, nil
}

func (m *Model) readHparams(f *gguf.File, opts LoadOptions) error {
	arch, err := f.String("general.architecture")
	if err != nil {
		return err
	}
	hp := hparams{arch: arch}
	switch arch {
	case "llama":
	case "qwen2":
		hp.ropeNeox = true
	default:
		return fmt.Errorf("architecture %q is not supported (supported: llama, qwen2)", arch)
	}
	p := arch + "."
	if hp.nEmbd, err = metaUint(f, p+"embedding_length", 0, true); err != nil {
		return err
	}
	if hp.nLayer, err = metaUint(f, p+"block_count", 0, true); err != nil {
		return err
	}
	if hp.nHead, err = metaUint(f, p+"attention.head_count", 0, true); err != nil {
		return err
	}
	if hp.nHeadKV, err = metaUint(f, p+"attention.head_count_kv", hp.nHead, false); err != nil {
		return err
	}
	if hp.nFF, err = metaUint(f, p+"feed_forward_length", 0, true); err != nil {
		return err
	}
	if hp.nCtx, err = metaUint(f, p+"context_length", 2048, false); err != nil {
		return err
	}
	if hp.nHead == 0 || hp.nHeadKV == 0 || hp.nEmbd == 0 || hp.nLayer == 0 || hp.nFF == 0 || hp.nCtx == 0 {
		return fmt.Errorf("hyper-parameters must be positive: embedding %d, layers %d, heads %d, kv heads %d, ff %d, context %d",
			hp.nEmbd, hp.nLayer, hp.nHead, hp.nHeadKV, hp.nFF, hp.nCtx)
	}
	if hp.nHead%hp.nHeadKV != 0 {
		return fmt.Errorf("head count %d is not a multiple of kv head count %d", hp.nHead, hp.nHeadKV)
	}
	if hp.headDim, err = metaUint(f, p+"attention.key_length", hp.nEmbd/hp.nHead, false); err != nil {
		return err
	}
	vl, err := metaUint(f, p+"attention.value_length", hp.headDim, false)
	if err != nil {
		return err
	}
	if vl != hp.headDim || hp.headDim == 0 || hp.headDim%2 != 0 {
		return fmt.Errorf("head dimension: key length %d, value length %d (need equal, even, positive)", hp.headDim, vl)
	}
	if hp.nLayer > 4096 || hp.nHead > 4096 || hp.headDim > 4096 {
		return fmt.Errorf("hyper-parameters out of range: %d layers, %d heads, head dim %d", hp.nLayer, hp.nHead, hp.headDim)
	}
	eps, err := metaFloat(f, p+"attention.layer_norm_rms_epsilon", 1e-5)
	if err != nil {
		return err
	}
	hp.eps = float32(eps)
	if hp.ropeBase, err = metaFloat(f, p+"rope.freq_base", 10000); err != nil {
		return err
	}
	if hp.ropeDim, err = metaUint(f, p+"rope.dimension_count", hp.headDim, false); err != nil {
		return err
	}
	if hp.ropeDim > hp.headDim || hp.ropeDim%2 != 0 || hp.ropeDim == 0 {
		return fmt.Errorf("rope dimension %d must be even and at most head dimension %d", hp.ropeDim, hp.headDim)
	}
	hp.ropeScale = 1
	scalingType := ""
	if _, ok := f.Get(p + "rope.scaling.type"); ok {
		if scalingType, err = f.String(p + "rope.scaling.type"); err != nil {
			return err
		}
	}
	factor, err := metaFloat(f, p+"rope.scaling.factor", 0)
	if err != nil {
		return err
	}
	if factor == 0 {
		// Older files carry the linear factor under rope.scale_linear.
		if factor, err = metaFloat(f, p+"rope.scale_linear", 0); err != nil {
			return err
		}
		if factor != 0 && scalingType == "" {
			scalingType = "linear"
		}
	}
	switch scalingType {
	case "", "none":
	case "linear":
		if factor <= 0 {
			return fmt.Errorf("rope scaling linear: factor %v must be positive", factor)
		}
		hp.ropeScale = 1 / factor
	default:
		return fmt.Errorf("rope scaling type %q is not supported (supported: none, linear; llama3 uses rope_freqs.weight)", scalingType)
	}
	if opts.ContextLength > 0 && opts.ContextLength < hp.nCtx {
		hp.nCtx = opts.ContextLength
	}
	m.hp = hp
	return nil
}

// tensor looks up a tensor and checks its shape.
func tensorOf(f *gguf.File, name string, dims ...int) (gguf.TensorInfo, []byte, error) {
	ti, data, err := f.Tensor(name)
	if err != nil {
		return ti, nil, err
	}
	ok := len(ti.Dims) == len(dims)
	for i := 0; ok && i < len(dims); i++ {
		ok = ti.Dims[i] == uint64(dims[i])
	}
	if !ok {
		return ti, nil, fmt.Errorf("tensor %s: shape %v, want %v", name, ti.Dims, dims)
	}
	if !quant.Supported(ti.Type) {
		return ti, nil, fmt.Errorf("tensor %s: type %v is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)", name, ti.Type)
	}
	return ti, data, nil
}

func loadMatrix(f *gguf.File, name string, cols, rows int) (matrix, error) {
	ti, data, err := tensorOf(f, name, cols, rows)
	if err != nil {
		return matrix{}, err
	}
	rb, err := quant.RowBytes(ti.Type, cols)
	if err != nil {
		return matrix{}, fmt.Errorf("tensor %s: %w", name, err)
	}
	if len(data) != rb*rows {
		return matrix{}, fmt.Errorf("tensor %s: %d bytes, want %d", name, len(data), rb*rows)
	}
	if align := elemAlign(ti.Type); align > 1 && uintptr(unsafe.Pointer(&data[0]))%align != 0 {
		// A file with an unusual general.alignment: float kernels read
		// rows as []float32 / []uint16, so give them aligned storage.
		data = alignedCopy(data)
	}
	return matrix{name: name, typ: ti.Type, rows: rows, cols: cols, rowBytes: rb, data: data}, nil
}

func elemAlign(t gguf.Type) uintptr {
	switch t {
	case gguf.TypeF32:
		return 4
	case gguf.TypeF16, gguf.TypeBF16:
		return 2
	}
	return 1
}

// alignedCopy copies b into storage aligned to 8 bytes.
func alignedCopy(b []byte) []byte {
	buf := make([]uint64, (len(b)+7)/8)
	out := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*8)[:len(b)]
	copy(out, b)
	return out
}

func loadVector(f *gguf.File, name string, n int) ([]float32, error) {
	ti, data, err := tensorOf(f, name, n)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	if err := quant.Dequantize(ti.Type, data, out); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return out, nil
}

func (m *Model) loadTensors(f *gguf.File) error {
	hp := &m.hp
	ti, _, err := f.Tensor("token_embd.weight")
	if err != nil {
		return err
	}
	if len(ti.Dims) != 2 || ti.Dims[1] == 0 || ti.Dims[1] > 1<<24 {
		return fmt.Errorf("tensor token_embd.weight: shape %v, want [%d, n_vocab]", ti.Dims, hp.nEmbd)
	}
	hp.nVocab = int(ti.Dims[1])
	if m.embd, err = loadMatrix(f, "token_embd.weight", hp.nEmbd, hp.nVocab); err != nil {
		return err
	}
	if m.outNrm, err = loadVector(f, "output_norm.weight", hp.nEmbd); err != nil {
		return err
	}
	if _, _, err := f.Tensor("output.weight"); err == nil {
		if m.output, err = loadMatrix(f, "output.weight", hp.nEmbd, hp.nVocab); err != nil {
			return err
		}
	} else {
		m.output = m.embd // tied embeddings
	}
	qDim, kvDim := hp.nHead*hp.headDim, hp.nHeadKV*hp.headDim
	m.layers = make([]layer, hp.nLayer)
	for i := range m.layers {
		l := &m.layers[i]
		n := func(s string) string { return fmt.Sprintf("blk.%d.%s", i, s) }
		if l.attnNorm, err = loadVector(f, n("attn_norm.weight"), hp.nEmbd); err != nil {
			return err
		}
		if l.wq, err = loadMatrix(f, n("attn_q.weight"), hp.nEmbd, qDim); err != nil {
			return err
		}
		if l.wk, err = loadMatrix(f, n("attn_k.weight"), hp.nEmbd, kvDim); err != nil {
			return err
		}
		if l.wv, err = loadMatrix(f, n("attn_v.weight"), hp.nEmbd, kvDim); err != nil {
			return err
		}
		if l.wo, err = loadMatrix(f, n("attn_output.weight"), qDim, hp.nEmbd); err != nil {
			return err
		}
		if l.ffnNorm, err = loadVector(f, n("ffn_norm.weight"), hp.nEmbd); err != nil {
			return err
		}
		if l.gate, err = loadMatrix(f, n("ffn_gate.weight"), hp.nEmbd, hp.nFF); err != nil {
			return err
		}
		if l.up, err = loadMatrix(f, n("ffn_up.weight"), hp.nEmbd, hp.nFF); err != nil {
			return err
		}
		if l.down, err = loadMatrix(f, n("ffn_down.weight"), hp.nFF, hp.nEmbd); err != nil {
			return err
		}
		if hp.arch == "qwen2" {
			if l.bq, err = loadVector(f, n("attn_q.bias"), qDim); err != nil {
				return err
			}
			if l.bk, err = loadVector(f, n("attn_k.bias"), kvDim); err != nil {
				return err
			}
			if l.bv, err = loadVector(f, n("attn_v.bias"), kvDim); err != nil {
				return err
			}
		}
	}
	// Rotation frequencies: theta_i = base^(-2i/n_rot), scaled
	// linearly and divided by rope_freqs.weight factors (llama3) if present.
	half := hp.ropeDim / 2
	m.invFreq = make([]float64, half)
	var factors []float32
	if _, _, err := f.Tensor("rope_freqs.weight"); err == nil {
		if factors, err = loadVector(f, "rope_freqs.weight", half); err != nil {
			return err
		}
	}
	for i := range m.invFreq {
		// base^(-2i/n) through exp and log: math.Pow uses math.Exp, whose
		// amd64 version depends on the CPU's FMA support.
		fr := detmath.Exp(float64(float64(-2*float64(i)/float64(hp.ropeDim))*math.Log(hp.ropeBase))) * hp.ropeScale
		if factors != nil {
			if !(factors[i] > 0) {
				return fmt.Errorf("tensor rope_freqs.weight: factor %d is %v, want > 0", i, factors[i])
			}
			fr /= float64(factors[i])
		}
		m.invFreq[i] = fr
	}
	return nil
}

func (m *Model) fillInfo(f *gguf.File) {
	hp := m.hp
	name, _ := f.String("general.name")
	var params int64
	counts := map[gguf.Type]int64{}
	for _, t := range f.Tensors {
		params += int64(t.Elements())
		counts[t.Type] += int64(t.Size)
	}
	var best gguf.Type
	var bestBytes int64 = -1
	for t, b := range counts {
		if b > bestBytes || (b == bestBytes && t < best) {
			best, bestBytes = t, b
		}
	}
	var perTok int64
	mats := []*matrix{&m.output}
	for i := range m.layers {
		l := &m.layers[i]
		mats = append(mats, &l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down)
	}
	for _, w := range mats {
		perTok += int64(len(w.data))
	}
	perTok += int64(m.embd.rowBytes)
	m.info = ModelInfo{
		Name: name, Arch: hp.arch, Params: params, Quant: best.String(), ContextLength: hp.nCtx,
		EmbeddingDim: hp.nEmbd, Layers: hp.nLayer, Heads: hp.nHead, KVHeads: hp.nHeadKV,
		VocabSize: hp.nVocab, WeightBytesPerToken: perTok,
	}
}

// KVBytesPerToken is the KV cache size of one token of one sequence.
func (m *Model) KVBytesPerToken() int64 { return m.kvBytesPerToken() }

func (m *Model) kvBytesPerToken() int64 {
	return int64(m.hp.nLayer) * 2 * int64(m.hp.nHeadKV*m.hp.headDim) * 2
}
