// Package demomodel deterministically generates the small GGUF models that
// Mycel's devnet and tests run on: llama-architecture weights that encode
// n-gram statistics of an embedded text corpus (Go's own documentation), with
// a byte-level BPE tokenizer trained on that corpus. The same code gives the
// same bytes on every machine.
//
// # Models
//
// [Generate] writes four files:
//
//   - mycel-ref (F32, 21 MB): 4 layers, d_model 256, 8 heads / 4 KV heads,
//     FFN 768, vocabulary 4096, context 2048.
//   - mycel-ref-q8 (Q8_0) and mycel-ref-q4km (Q4_K, with Q6_K for output and
//     for attn_v/ffn_down of the layers llama.cpp's Q4_K_M rule picks): the
//     same weights quantised by internal/quant.
//   - mycel-sub (F32, 13 MB): a cheaper substitute with the same tokenizer,
//     2 layers and lower-rank statistics; plausible text, measurably different
//     token distributions (mean KL from mycel-ref above 1 bit per token).
//
// [GeneratePeer] writes four more encodings of mycel-ref for the peer check
// against llama.cpp (docs/PEER.md), never used by the devnet: mycel-ref-f16,
// mycel-ref-bf16, mycel-ref-q4_0 (Q6_K output, llama-quantize's rule) and
// mycel-ref-qwen2 (architecture qwen2: q/k rows permuted for the NEOX RoPE
// layout, so attention is unchanged, plus pseudo-random q/k/v biases).
//
// All carry tokenizer.ggml.model "gpt2", pre-tokenizer "qwen2", Qwen2's
// ChatML template, control tokens <|endoftext|>, <|im_start|>, <|im_end|>
// (eos <|im_end|>, bos and padding <|endoftext|>, no BOS added).
//
// # Construction
//
// The corpus (corpus/, made by mkcorpus) is pre-tokenized as Qwen2 does and a
// BPE vocabulary of 4093 tokens is trained on it (ties broken by token ids).
// The corpus is then turned into ChatML conversations and counted: bigrams
// and skip-bigrams (token two back → next). token_embd rows A and output rows
// B factorise the smoothed bigram log-probabilities at rank 180 (randomized
// subspace iteration of the sparse, row-weighted log-ratio matrix), plus a
// constant coordinate that carries the unigram log-prior and a padding
// coordinate that gives every row the same norm, so RMSNorm scales all tokens
// alike. Head 0 of layer 0 attends to the previous position (constant q and
// k phased through RoPE) and copies that token's skip-bigram factor into its
// own block of the residual, which the output reads as a second expert. All
// other weights are small zero-mean pseudo-random values (splitmix64): the
// layers do real work on the residual without destroying the signal.
//
// # Determinism
//
// Nothing depends on map iteration order or goroutine scheduling (the
// package runs on one goroutine). Every floating-point product that feeds the
// weights is wrapped in float64() so that no compiler may fuse it into an FMA,
// and log, exp, pow, cos and sin are this package's portable versions (Go's
// use assembly on some architectures). TestGoldenHashes pins the sha256 of
// every file; building the tests with GOAMD64=v3 (which lets the compiler use
// FMA instructions) reproduces the F32 and Q8_0 files bit for bit.
package demomodel
