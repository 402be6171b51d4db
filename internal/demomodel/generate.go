package demomodel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mycel-network/mycel/internal/gguf"
)

// Generated describes one model file written (or found intact) by Generate.
type Generated struct {
	Name        string `json:"name"`
	Path        string `json:"path"`
	SHA256      string `json:"sha256"`
	Bytes       int64  `json:"bytes"`
	Description string `json:"description"`
}

// chatTemplate is Qwen2-Instruct's ChatML template, verbatim.
const chatTemplate = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// refRecipe is the reference model: 4 layers, rank-180 bigram and rank-31
// skip-bigram statistics.
func refRecipe() recipe {
	return recipe{
		shape: shape{layers: 4, dModel: 256, heads: 8, kvHeads: 4, ffn: 768, context: 2048, ropeBase: 10000, rmsEps: 1e-6},
		rank:  180, alpha: 3, gamma: 0.5, prevRank: 32, beta: 3, lambda: 0.5, attnGain: 0.3, mlpGain: 0.3, seed: 1,
	}
}

// subRecipe is the substitute: half the layers, a smaller MLP, rank-48
// bigram and rank-7 skip-bigram statistics, heavier smoothing.
func subRecipe() recipe {
	return recipe{
		shape: shape{layers: 2, dModel: 256, heads: 8, kvHeads: 4, ffn: 512, context: 2048, ropeBase: 10000, rmsEps: 1e-6},
		rank:  48, alpha: 30, gamma: 0.25, prevRank: 8, beta: 30, lambda: 0.5, attnGain: 0.3, mlpGain: 0.3, seed: 2,
	}
}

// benchRecipe is the memory-bound benchmark model: 8 layers, d_model 1024,
// FFN 4096 (about 140M parameters, 0.55 GB in F32), so that its weights do
// not fit in any cache and a forward pass is bound by memory bandwidth. Its
// statistics part is the reference model's; the rest of the residual stream
// is carried through random layers.
func benchRecipe() recipe {
	return recipe{
		shape: shape{layers: 8, dModel: 1024, heads: 16, kvHeads: 4, ffn: 4096, context: 2048, ropeBase: 10000, rmsEps: 1e-6},
		rank:  180, alpha: 3, gamma: 0.5, prevRank: 32, beta: 3, lambda: 0.5, attnGain: 0.3, mlpGain: 0.3, seed: 3,
	}
}

// modelFile is one file Generate writes: a float model encoded with a mix.
type modelFile struct {
	name, description string
	base              string // float model: "ref", "sub" or "bench"
	mix               quantMix
	// arch is the GGUF architecture: "" for llama, or "qwen2" for the
	// base's weights rewritten as qwen2 (see toQwen2).
	arch string
}

func modelFiles() []modelFile {
	return []modelFile{
		{"mycel-ref", "reference model, F32: 4 layers, d_model 256, bigram statistics of Go's documentation", "ref", mixF32, ""},
		{"mycel-ref-q8", "mycel-ref quantised to Q8_0", "ref", mixQ8_0, ""},
		{"mycel-ref-q4km", "mycel-ref quantised Q4_K_M style (Q4_K, Q6_K for output, some attn_v and ffn_down)", "ref", mixQ4KM, ""},
		{"mycel-sub", "cheaper substitute, F32: 2 layers, rank-48 bigram and rank-7 skip-bigram statistics, same tokenizer", "sub", mixF32, ""},
	}
}

// benchFiles are the benchmark models GenerateBench writes.
func benchFiles() []modelFile {
	return []modelFile{
		{"mycel-bench-f32", "memory-bound benchmark model, F32: 8 layers, d_model 1024, FFN 4096", "bench", mixF32, ""},
		{"mycel-bench-q8", "mycel-bench-f32 quantised to Q8_0", "bench", mixQ8_0, ""},
		{"mycel-bench-q4k", "mycel-bench-f32 quantised Q4_K_M style (Q4_K, Q6_K for output, some attn_v and ffn_down)", "bench", mixQ4KM, ""},
	}
}

// peerFiles are the extra models GeneratePeer writes for the peer check
// against llama.cpp: the reference model in the weight types and the
// architecture the demo models do not use.
func peerFiles() []modelFile {
	return []modelFile{
		{"mycel-ref-f16", "mycel-ref with F16 matrices", "ref", mixF16, ""},
		{"mycel-ref-bf16", "mycel-ref with BF16 matrices", "ref", mixBF16, ""},
		{"mycel-ref-q4_0", "mycel-ref quantised to Q4_0 (Q6_K for output, as llama-quantize does)", "ref", mixQ4_0, ""},
		{"mycel-ref-qwen2", "mycel-ref as a qwen2 model, F32: NEOX rope layout, nonzero q/k/v biases", "ref", mixF32, "qwen2"},
	}
}

// PeerNames returns the names of the models GeneratePeer writes, in order.
func PeerNames() []string {
	var out []string
	for _, f := range peerFiles() {
		out = append(out, f.name)
	}
	return out
}

// GeneratePeer writes the peer-check models (mycel-ref-f16, -bf16, -q4_0
// and -qwen2) into outDir as NAME.gguf, idempotently like Generate. They are
// not demo models: only the peer check (scripts/peer-check.sh) uses them.
func GeneratePeer(ctx context.Context, outDir string, progress func(msg string)) ([]Generated, error) {
	return generate(ctx, outDir, peerFiles(), progress)
}

// Names returns the names of the models Generate writes, in order.
func Names() []string {
	var out []string
	for _, f := range modelFiles() {
		out = append(out, f.name)
	}
	return out
}

// Generate writes the demo models into outDir as NAME.gguf and returns what
// it wrote. It is idempotent: a file whose hash is the one this version of
// the code produces is kept without rebuilding; any other file of that name
// is replaced. progress (may be nil) receives one line per step.
func Generate(ctx context.Context, outDir string, progress func(msg string)) ([]Generated, error) {
	return generate(ctx, outDir, modelFiles(), progress)
}

// GenerateBench writes the benchmark models (mycel-bench-f32, -q8, -q4k)
// into outDir as NAME.gguf, deterministically. They are large (about 0.8 GB
// together), used only by `mycel bench engine`, never by tests or by
// Generate; they are rebuilt on every call.
func GenerateBench(ctx context.Context, outDir string, progress func(msg string)) ([]Generated, error) {
	return generate(ctx, outDir, benchFiles(), progress)
}

func generate(ctx context.Context, outDir string, files []modelFile, progress func(msg string)) ([]Generated, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("generate models: %w", err)
	}
	var (
		st     *stats
		floats = map[string]*floatModel{}
	)
	var out []Generated
	for _, mf := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := filepath.Join(outDir, mf.name+".gguf")
		if want := expectedSHA256(mf.name); want != "" {
			sum, size, err := hashFile(path)
			if err == nil && sum == want {
				progress(fmt.Sprintf("%s: up to date", mf.name))
				out = append(out, Generated{mf.name, path, sum, size, mf.description})
				continue
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("generate %s: %w", mf.name, err)
			}
		}
		if st == nil {
			progress("training tokenizer and counting the corpus")
			text, err := Corpus()
			if err != nil {
				return nil, err
			}
			if st, err = newStats(text); err != nil {
				return nil, fmt.Errorf("generate models: %w", err)
			}
		}
		fm := floats[mf.base+"/"+mf.arch]
		if fm == nil && mf.arch != "" {
			base := floats[mf.base+"/"]
			if base == nil {
				// Build (and keep) the llama weights first.
				progress(fmt.Sprintf("%s: building weights", mf.name))
				var err error
				if base, err = buildFloat(st, recipeOf(mf.base)); err != nil {
					return nil, fmt.Errorf("generate %s: %w", mf.name, err)
				}
				floats[mf.base+"/"] = base
			}
			progress(fmt.Sprintf("%s: converting weights to %s", mf.name, mf.arch))
			fm = toQwen2(base, recipeOf(mf.base).seed)
			floats[mf.base+"/"+mf.arch] = fm
		}
		if fm == nil {
			progress(fmt.Sprintf("%s: building weights", mf.name))
			var err error
			if fm, err = buildFloat(st, recipeOf(mf.base)); err != nil {
				return nil, fmt.Errorf("generate %s: %w", mf.name, err)
			}
			floats[mf.base+"/"] = fm
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		progress(fmt.Sprintf("%s: writing %s", mf.name, path))
		g, err := writeModel(path, mf, st, fm)
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", mf.name, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func recipeOf(base string) recipe {
	switch base {
	case "sub":
		return subRecipe()
	case "bench":
		return benchRecipe()
	}
	return refRecipe()
}

// writeModel encodes one model and writes it atomically.
func writeModel(path string, mf modelFile, st *stats, fm *floatModel) (Generated, error) {
	w := gguf.NewWriter()
	setMetadata(w, mf, st, fm)
	if err := fm.encode(w, mf.mix); err != nil {
		return Generated{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+mf.name+".*.tmp")
	if err != nil {
		return Generated{}, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	n, err := w.WriteTo(io.MultiWriter(tmp, h))
	if err != nil {
		tmp.Close()
		return Generated{}, err
	}
	if err := tmp.Close(); err != nil {
		return Generated{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Generated{}, err
	}
	return Generated{mf.name, path, hex.EncodeToString(h.Sum(nil)), n, mf.description}, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func setMetadata(w *gguf.Writer, mf modelFile, st *stats, fm *floatModel) {
	s := fm.shape
	arch := mf.arch
	if arch == "" {
		arch = "llama"
	}
	w.SetString("general.architecture", arch)
	w.SetString("general.type", "model")
	w.SetString("general.name", mf.name)
	w.SetString("general.description", mf.description)
	w.SetString("general.license", "BSD-3-Clause")
	w.SetString("general.source.url", "https://go.dev/doc (corpus: Go 1.26.8 documentation)")
	w.SetUint32("general.file_type", mf.mix.fileType())
	if mf.mix != mixF32 {
		w.SetUint32("general.quantization_version", 2)
	}
	w.SetUint32(arch+".context_length", uint32(s.context))
	w.SetUint32(arch+".embedding_length", uint32(s.dModel))
	w.SetUint32(arch+".block_count", uint32(s.layers))
	w.SetUint32(arch+".feed_forward_length", uint32(s.ffn))
	w.SetUint32(arch+".attention.head_count", uint32(s.heads))
	w.SetUint32(arch+".attention.head_count_kv", uint32(s.kvHeads))
	w.SetFloat32(arch+".rope.freq_base", s.ropeBase)
	w.SetFloat32(arch+".attention.layer_norm_rms_epsilon", s.rmsEps)
	w.SetUint32(arch+".rope.dimension_count", uint32(s.headDim()))
	w.SetUint32(arch+".vocab_size", uint32(st.vocabSize))

	t := st.tok
	tokens := make([]string, 0, t.n)
	types := make([]int32, 0, t.n)
	for _, s := range t.tokens {
		tokens = append(tokens, s)
		types = append(types, 1) // normal
	}
	for _, s := range []string{tokEndOfText, tokIMStart, tokIMEnd} {
		tokens = append(tokens, s)
		types = append(types, 3) // control
	}
	w.SetString("tokenizer.ggml.model", "gpt2")
	w.SetString("tokenizer.ggml.pre", "qwen2")
	w.SetStrings("tokenizer.ggml.tokens", tokens)
	w.SetInt32s("tokenizer.ggml.token_type", types)
	w.SetStrings("tokenizer.ggml.merges", t.merges)
	w.SetUint32("tokenizer.ggml.bos_token_id", uint32(t.eot))
	w.SetUint32("tokenizer.ggml.eos_token_id", uint32(t.imEnd))
	w.SetUint32("tokenizer.ggml.padding_token_id", uint32(t.eot))
	w.SetBool("tokenizer.ggml.add_bos_token", false)
	w.SetString("tokenizer.chat_template", chatTemplate)
}
