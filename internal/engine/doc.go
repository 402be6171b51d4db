// Package engine is Mycel's built-in inference engine: it loads llama and
// qwen2 GGUF models, generates text with continuous batching and scores
// teacher-forced answers for verifiers.
//
// # Reproducibility guarantee
//
// For one model file, the logits, log-probabilities and sampled tokens of a
// sequence are bit-identical across runs, thread counts, batch composition
// (which other sequences share a forward pass, how a prompt is split into
// prefill chunks) and between generating and scoring, on machines of the
// same architecture. This holds because:
//
//   - Every output element is computed by exactly one goroutine with one
//     reduction whose order is fixed by the model's shapes: matrix-vector
//     products go through quant.DotVec (see package quant for its order),
//     attention scores through quant.DotF16, softmax and the value sum run
//     over key positions 0..p in order, RMSNorm sums squares in index order
//     in float64. Work is parallelised across output rows, attention heads and
//     tokens, never inside a reduction.
//   - Keys and values are stored as float16 (llama.cpp's default cache
//     type), rounded once when written; attention scores are q·k in the
//     order of quant.DotF16, values are summed in float32.
//   - The computation for a token depends only on its own activations and on
//     the key/value cache of its own sequence at positions <= its own; batched
//     tokens never mix. Key/values of a position are computed the same way
//     whether the position was decoded alone or prefilled in a batch.
//   - Activations are quantised per token (Q8_0/Q8_K blocks) by pure
//     functions of that token's values.
//   - No fused multiply-add is used: products are rounded by explicit
//     conversions, which the Go spec forbids fusing. exp is a portable copy
//     of Go's (math.Exp picks an FMA version at run time on amd64); cos,
//     sin, log and sqrt are Go's, which do not depend on CPU features.
//     Build with the default GOAMD64=v1: at v3 the compiler may fuse
//     multiply-adds inside the standard library's math functions.
//   - The matrix kernels of package quant have AVX2 (and, for batched
//     passes, AVX-512 tile) assembly and portable Go versions that give the
//     same bits (tests check every path against DotVec, and a golden test
//     pins the log-probabilities: run it with -tags purego as well). A
//     batched pass computes each element with the same reduction as
//     single-token decode, whichever kernel runs it.
//   - Log-probabilities are the log-softmax of the raw logits: max, then
//     sum of exp(l-max) in vocabulary order in float64, in both Generate
//     and Score.
//   - Sampling draws from a counter-based generator (SplitMix64 of the seed
//     and the token index), so a request's randomness does not depend on
//     other requests.
//
// Generating a token at position p therefore yields exactly the
// log-probability that Score computes for that token in one batched prefill.
//
// # Using it
//
//	m, err := engine.Load(path, engine.LoadOptions{})
//	e := engine.New(m, engine.Config{Threads: 4, KVBudgetBytes: 1 << 30})
//	go e.Run(ctx)
//	res, err := e.Generate(ctx, engine.Request{Prompt: ids, MaxTokens: 64}, onToken)
//	scores, err := e.Score(ctx, prompt, output, 5)
package engine
