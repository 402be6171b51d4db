package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// engineBench is the result for one model file and one engine.
type engineBench struct {
	Engine             string  `json:"engine"` // "mycel" or "llama.cpp"
	Model              string  `json:"model"`
	Quant              string  `json:"quant,omitempty"`
	Threads            int     `json:"threads"`
	PromptTokens       int     `json:"prompt_tokens"`
	GenTokens          int     `json:"gen_tokens"`
	Parallel           int     `json:"parallel"`
	PrefillTokS        float64 `json:"prefill_tok_s"`
	DecodeTokS         float64 `json:"decode_tok_s"`
	DecodeTokSParallel float64 `json:"decode_tok_s_parallel"`
	// Scoring: teacher-forced scoring of ScoreTokens tokens versus
	// generating them.
	ScoreTokens    int     `json:"score_tokens,omitempty"`
	ScoreSeconds   float64 `json:"score_seconds,omitempty"`
	GenerateSecond float64 `json:"generate_seconds,omitempty"`
	ScoreSpeedup   float64 `json:"score_speedup,omitempty"`
	// CPU time of this process per token (user+system, all threads): less
	// sensitive than wall time to other load on the machine.
	PrefillCPUPerTokMs float64 `json:"prefill_cpu_ms_per_token,omitempty"`
	DecodeCPUPerTokMs  float64 `json:"decode_cpu_ms_per_token,omitempty"`
	ScoreCPUSpeedup    float64 `json:"score_cpu_speedup,omitempty"`
	// Memory-bandwidth bound of decode: bandwidth / bytes read per token.
	BytesPerToken  int64   `json:"bytes_per_token,omitempty"`
	BoundTokS      float64 `json:"bound_tok_s,omitempty"`
	PercentOfBound float64 `json:"percent_of_bound,omitempty"`
	PeakRSSBytes   int64   `json:"peak_rss_bytes"`
	Error          string  `json:"error,omitempty"`
}

type benchReport struct {
	Threads            int           `json:"threads"`
	MemBandwidthBytesS float64       `json:"mem_bandwidth_bytes_s"`
	Results            []engineBench `json:"results"`
}

// benchText is repeated to make benchmark prompts (the same text as
// llamapeer bench uses); its content does not change the cost of a pass.
const benchText = "The quick brown fox jumps over the lazy dog. Packages are built from source, " +
	"tested on every commit and shipped to a network of machines that serve requests. "

func benchEngine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench engine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	models := fs.String("model", "", "GGUF file(s), comma separated (required)")
	peer := fs.String("peer", "", "llama.cpp peer binary (bin/llamapeer) to benchmark on the same files")
	threads := fs.Int("threads", runtime.NumCPU(), "threads for both engines")
	promptTokens := fs.Int("prompt-tokens", 128, "prompt length for the prefill measurement")
	genTokens := fs.Int("gen-tokens", 64, "tokens per decode measurement")
	parallel := fs.Int("parallel", 4, "concurrent streams for the aggregate decode measurement")
	scoreTokens := fs.Int("score-tokens", 256, "answer length for scoring versus generating")
	output := fs.String("output", "text", "text or json")
	peerCPU := fs.Bool("peer-cpu", true, "also measure llama.cpp's CPU time per token (three extra short peer runs per model: prompt of 1 and of N tokens, then N tokens plus a decode)")
	scoreProfile := fs.String("score-profile", "", "write a CPU profile of the built-in engine's scoring passes to this file (last model wins)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *models == "" {
		return errors.New("bench engine: --model is required")
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("bench engine: --output %q: want text or json", *output)
	}
	if *threads < 1 || *promptTokens < 1 || *genTokens < 2 || *parallel < 1 || *scoreTokens < 1 {
		return errors.New("bench engine: --threads, --prompt-tokens, --parallel, --score-tokens must be >= 1 and --gen-tokens >= 2")
	}
	rep := benchReport{Threads: *threads}
	progress := func(format string, a ...any) {
		if *output == "text" {
			fmt.Fprintf(stderr, format+"\n", a...)
		}
	}
	for _, path := range strings.Split(*models, ",") {
		progress("mycel: %s", path)
		r, err := benchMycel(ctx, path, *threads, *promptTokens, *genTokens, *parallel, *scoreTokens, *scoreProfile)
		if err != nil {
			r.Error = err.Error()
		}
		rep.Results = append(rep.Results, r)
		if *peer != "" {
			progress("llama.cpp: %s", path)
			pr, err := runPeerBench(ctx, *peer, path, *threads, *promptTokens, *genTokens, *parallel)
			if err != nil {
				pr.Error = err.Error()
			}
			pr.Engine, pr.Model, pr.Quant, pr.BytesPerToken = "llama.cpp", path, r.Quant, r.BytesPerToken
			if err == nil && *peerCPU {
				progress("llama.cpp: %s: CPU time per token", path)
				if err := peerCPUPerToken(ctx, *peer, path, *threads, *promptTokens, *genTokens, &pr); err != nil {
					progress("llama.cpp: %s: CPU time: %v", path, err)
				}
			}
			rep.Results = append(rep.Results, pr)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	progress("measuring memory bandwidth")
	rep.MemBandwidthBytesS = memBandwidth(*threads)
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.BytesPerToken > 0 && rep.MemBandwidthBytesS > 0 {
			r.BoundTokS = rep.MemBandwidthBytesS / float64(r.BytesPerToken)
			r.PercentOfBound = 100 * r.DecodeTokS / r.BoundTokS
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(stdout, rep)
	return nil
}

// benchMycel measures the built-in engine on one file.
func benchMycel(ctx context.Context, path string, threads, promptTokens, genTokens, parallel, scoreTokens int, scoreProfile string) (engineBench, error) {
	r := engineBench{Engine: "mycel", Model: path, Threads: threads, PromptTokens: promptTokens, GenTokens: genTokens, Parallel: parallel, ScoreTokens: scoreTokens}
	m, err := engine.Load(path, engine.LoadOptions{})
	if err != nil {
		return r, err
	}
	defer m.Close()
	info := m.Info()
	r.Quant, r.BytesPerToken = info.Quant, info.WeightBytesPerToken
	tok := m.Tokenizer()
	if tok == nil {
		return r, errors.New("model has no tokenizer")
	}
	longest := max(promptTokens+genTokens, 16+scoreTokens) + 1
	if longest > info.ContextLength {
		return r, fmt.Errorf("benchmark needs %d tokens of context, model has %d", longest, info.ContextLength)
	}
	prompt, err := benchPrompt(tok, max(promptTokens, 16))
	if err != nil {
		return r, err
	}
	e := engine.New(m, engine.Config{Threads: threads, MaxBatch: parallel, PrefillChunk: promptTokens,
		KVBudgetBytes: int64(parallel+1) * int64(longest) * m.KVBytesPerToken()})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() { stop(); <-done }()
	gen := func(p []int32, n int) (engine.Result, error) {
		return e.Generate(ctx, engine.Request{Prompt: p, MaxTokens: n, IgnoreEOG: true}, func(engine.Token) error { return nil })
	}
	// Warm-up.
	if _, err := gen(prompt[:8], 4); err != nil {
		return r, err
	}
	c0 := cpuTime()
	res, err := gen(prompt[:promptTokens], 1)
	if err != nil {
		return r, err
	}
	r.PrefillTokS = float64(promptTokens) / res.Prefill.Seconds()
	r.PrefillCPUPerTokMs = ms(cpuTime()-c0) / float64(promptTokens)
	c0 = cpuTime()
	res, err = gen(prompt[:8], genTokens)
	if err != nil {
		return r, err
	}
	r.DecodeTokS = float64(genTokens-1) / res.Decode.Seconds()
	r.DecodeCPUPerTokMs = ms(cpuTime()-c0) / float64(genTokens)
	// Aggregate decode with parallel streams: tokens after each stream's
	// first, over the wall time from the first first-token to the end.
	var wg sync.WaitGroup
	errs := make([]error, parallel)
	start := time.Now()
	for i := 0; i < parallel; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = gen(prompt[i:i+8], genTokens)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	r.DecodeTokSParallel = float64(parallel*genTokens) / time.Since(start).Seconds()
	// Scoring versus generating the same answer.
	t0, c0 := time.Now(), cpuTime()
	res, err = gen(prompt[:16], scoreTokens)
	if err != nil {
		return r, err
	}
	r.GenerateSecond = time.Since(t0).Seconds()
	genCPU := cpuTime() - c0
	answer := make([]int32, len(res.Tokens))
	for i, t := range res.Tokens {
		answer[i] = t.ID
	}
	if scoreProfile != "" {
		f, err := os.Create(scoreProfile)
		if err != nil {
			return r, fmt.Errorf("score profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return r, fmt.Errorf("score profile: %w", err)
		}
	}
	t0, c0 = time.Now(), cpuTime()
	_, err = e.Score(ctx, prompt[:16], answer, 0)
	r.ScoreSeconds = time.Since(t0).Seconds()
	if scoreProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return r, err
	}
	r.ScoreSpeedup = r.GenerateSecond / r.ScoreSeconds
	r.ScoreCPUSpeedup = float64(genCPU) / float64(cpuTime()-c0)
	r.PeakRSSBytes = peakRSS()
	return r, nil
}

func benchPrompt(tok *tokenizer.Tokenizer, n int) ([]int32, error) {
	body, err := tok.Encode(benchText, tokenizer.EncodeOptions{})
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, errors.New("bench text tokenizes to nothing")
	}
	var ids []int32
	if tok.AddBOS() && tok.BOS() >= 0 {
		ids = append(ids, tok.BOS())
	}
	for len(ids) < n+8 {
		ids = append(ids, body...)
	}
	return ids, nil
}

// runPeer runs the llama.cpp peer binary with args and decodes the one JSON
// object it prints into out. It is the hook for every comparison with
// llama.cpp.
func runPeer(ctx context.Context, peer string, out any, args ...string) error {
	cmd := exec.CommandContext(ctx, peer, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[len(msg)-500:]
		}
		return fmt.Errorf("peer %s %s: %w: %s", peer, strings.Join(args, " "), err, msg)
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("peer %s: decode output: %w", peer, err)
	}
	return nil
}

func runPeerBench(ctx context.Context, peer, model string, threads, promptTokens, genTokens, parallel int) (engineBench, error) {
	var r engineBench
	err := runPeer(ctx, peer, &r, "bench", "--model", model, "--threads", strconv.Itoa(threads),
		"--prompt-tokens", strconv.Itoa(promptTokens), "--gen-tokens", strconv.Itoa(genTokens), "--parallel", strconv.Itoa(parallel))
	r.Threads, r.PromptTokens, r.GenTokens, r.Parallel = threads, promptTokens, genTokens, parallel
	return r, err
}

// peerCPUPerToken measures llama.cpp's CPU time (user+system of the peer
// process) per prefilled and per decoded token from three single-stream runs
// that differ only in prompt length (1 vs promptTokens) or in decoded tokens
// (2 vs genTokens+2): the differences cancel model loading and setup.
func peerCPUPerToken(ctx context.Context, peer, model string, threads, promptTokens, genTokens int, r *engineBench) error {
	// Each run twice, the lesser CPU time counts: llama.cpp's threads spin
	// while they wait for each other, which a busy machine turns into
	// large, noisy CPU times.
	runOnce := func(prompt, gen int) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, peer, "bench", "--model", model, "--threads", strconv.Itoa(threads),
			"--prompt-tokens", strconv.Itoa(prompt), "--gen-tokens", strconv.Itoa(gen), "--parallel", "1", "--reps", "1")
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("peer %s: %w: %s", peer, err, strings.TrimSpace(stderr.String()))
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
	run := func(prompt, gen int) (time.Duration, error) {
		a, err := runOnce(prompt, gen)
		if err != nil {
			return 0, err
		}
		b, err := runOnce(prompt, gen)
		return min(a, b), err
	}
	short, err := run(1, 2)
	if err != nil {
		return err
	}
	prefill, err := run(promptTokens, 2)
	if err != nil {
		return err
	}
	decode, err := run(promptTokens, genTokens+2)
	if err != nil {
		return err
	}
	if promptTokens > 1 {
		r.PrefillCPUPerTokMs = ms(prefill-short) / float64(promptTokens-1)
	}
	r.DecodeCPUPerTokMs = ms(decode-prefill) / float64(genTokens)
	return nil
}

// cpuTime returns the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// peakRSS returns the process's peak resident set size.
func peakRSS() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest)
				if len(f) >= 1 {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return kb << 10
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		return ru.Maxrss << 10
	}
	return 0
}

// memBandwidth estimates read bandwidth: threads goroutines sum disjoint
// parts of a 256 MiB buffer; the best of three passes counts.
func memBandwidth(threads int) float64 {
	buf := make([]uint64, 32<<20)
	for i := range buf {
		buf[i] = uint64(i)
	}
	best := 0.0
	sinks := make([]uint64, threads)
	for pass := 0; pass < 3; pass++ {
		start := time.Now()
		var wg sync.WaitGroup
		chunk := len(buf) / threads
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var s0, s1, s2, s3 uint64
				part := buf[t*chunk : (t+1)*chunk]
				for i := 0; i+4 <= len(part); i += 4 {
					s0 += part[i]
					s1 += part[i+1]
					s2 += part[i+2]
					s3 += part[i+3]
				}
				sinks[t] = s0 + s1 + s2 + s3
			}()
		}
		wg.Wait()
		if bw := float64(chunk*threads*8) / time.Since(start).Seconds(); bw > best {
			best = bw
		}
	}
	return best
}

func printBench(w io.Writer, rep benchReport) {
	fmt.Fprintf(w, "threads %d, memory bandwidth %.1f GB/s (estimated)\n\n", rep.Threads, rep.MemBandwidthBytesS/1e9)
	fmt.Fprintf(w, "%-10s %-34s %-6s %10s %10s %12s %9s %8s %9s %11s %11s %9s\n", "engine", "model", "quant", "prefill/s", "decode/s",
		fmt.Sprintf("decode/s x%d", firstParallel(rep)), "% bound", "score×", "peak MiB", "prefill cpu", "decode cpu", "score cpu×")
	for _, r := range rep.Results {
		name := r.Model
		if len(name) > 34 {
			name = "…" + name[len(name)-33:]
		}
		if r.Error != "" {
			fmt.Fprintf(w, "%-10s %-34s error: %s\n", r.Engine, name, r.Error)
			continue
		}
		score := "-"
		if r.ScoreSpeedup > 0 {
			score = fmt.Sprintf("%.1f", r.ScoreSpeedup)
		}
		cpu := func(v float64, unit string) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.3g%s", v, unit)
		}
		fmt.Fprintf(w, "%-10s %-34s %-6s %10.1f %10.1f %12.1f %8.0f%% %8s %9.0f %11s %11s %9s\n", r.Engine, name, r.Quant,
			r.PrefillTokS, r.DecodeTokS, r.DecodeTokSParallel, r.PercentOfBound, score, float64(r.PeakRSSBytes)/(1<<20),
			cpu(r.PrefillCPUPerTokMs, "ms/t"), cpu(r.DecodeCPUPerTokMs, "ms/t"), cpu(r.ScoreCPUSpeedup, ""))
	}
	// Ratios against the peer on the same file.
	for i := 0; i+1 < len(rep.Results); i++ {
		a, b := rep.Results[i], rep.Results[i+1]
		if a.Engine == "mycel" && b.Engine == "llama.cpp" && a.Error == "" && b.Error == "" && b.DecodeTokS > 0 {
			fmt.Fprintf(w, "%s: mycel/llama.cpp prefill %.2f×, decode %.2f×, decode x%d %.2f×", a.Model,
				a.PrefillTokS/b.PrefillTokS, a.DecodeTokS/b.DecodeTokS, a.Parallel, a.DecodeTokSParallel/b.DecodeTokSParallel)
			if a.PrefillCPUPerTokMs > 0 && b.PrefillCPUPerTokMs > 0 && a.DecodeCPUPerTokMs > 0 && b.DecodeCPUPerTokMs > 0 {
				fmt.Fprintf(w, "; by CPU time per token: prefill %.2f×, decode %.2f×", b.PrefillCPUPerTokMs/a.PrefillCPUPerTokMs, b.DecodeCPUPerTokMs/a.DecodeCPUPerTokMs)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, "\npeak MiB is the process peak (VmHWM) after that row, cumulative across rows for mycel; score× = time to generate N tokens / time to score them;")
	fmt.Fprintln(w, "cpu columns: this process's CPU time per token (all threads) and generate/score CPU ratio, steadier than wall time on a busy machine;")
	fmt.Fprintln(w, "% bound: decode tok/s over (memory bandwidth / weight bytes per token); models that fit in the last-level cache can exceed 100%")
}

func firstParallel(rep benchReport) int {
	if len(rep.Results) > 0 {
		return rep.Results[0].Parallel
	}
	return 0
}
