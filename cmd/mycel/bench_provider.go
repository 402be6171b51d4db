package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tx"
)

// providerBenchResult is the JSON form of `mycel bench provider`.
type providerBenchResult struct {
	Benchmark string `json:"benchmark"`
	Requests  int    `json:"requests"` // per latency series
	Tokens    int    `json:"tokens"`   // output tokens per request
	Stream    bool   `json:"stream"`
	Store     string `json:"store"` // "fsync" (as deployed) or "nosync"

	Direct   latencySeries `json:"direct"`   // client → zero-latency backend behind a bare OpenAI handler
	Provider latencySeries `json:"provider"` // client → provider (vouchers, receipts, store) → same backend
	// OverheadP50Us is provider p50 minus direct p50.
	OverheadP50Us float64 `json:"overhead_p50_us"`
	OverheadP99Us float64 `json:"overhead_p99_us"`

	Concurrency        int     `json:"concurrency"`
	DirectRPS          float64 `json:"direct_rps"`
	ProviderRPS        float64 `json:"provider_rps"`
	VoucherVerifyUs    float64 `json:"voucher_verify_us"`    // one ed25519 voucher check
	ReceiptSignUs      float64 `json:"receipt_sign_us"`      // signing one receipt (canonical JSON + ed25519)
	StoreCommitP50Us   float64 `json:"store_commit_p50_us"`  // one receipt batch commit with this store mode (median)
	VerifiesPerRequest float64 `json:"verifies_per_request"` // voucher checks the provider made / requests
	CPUs               int     `json:"cpus"`
	GoVersion          string  `json:"go_version"`
}

type latencySeries struct {
	P50Us  float64 `json:"p50_us"`
	P99Us  float64 `json:"p99_us"`
	MeanUs float64 `json:"mean_us"`
}

func series(d []time.Duration) latencySeries {
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1e3 }
	return latencySeries{P50Us: us(s[len(s)/2]), P99Us: us(s[len(s)*99/100]), MeanUs: us(sum) / float64(len(s))}
}

func benchProvider(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench provider", stderr)
	n := fs.Int("requests", 3000, "requests per latency series")
	tokens := fs.Int("tokens", 16, "output tokens per request")
	stream := fs.Bool("stream", false, "streaming requests")
	noSync := fs.Bool("nosync", false, "do not fsync receipts (measures the provider's CPU cost without the disk)")
	conc := fs.Int("concurrency", 8, "concurrent clients of the throughput runs")
	output := fs.String("output", "text", "text or json")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the sequential provider series to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("bench provider: --output %q: want text or json", *output)
	}
	if *n < 100 || *tokens < 1 || *conc < 1 {
		return errors.New("bench provider: want --requests >= 100, --tokens >= 1, --concurrency >= 1")
	}
	dir, err := os.MkdirTemp("", "mycel-bench-provider")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	const chainID, modelID = "bench", "bench"
	provKey, provAddr := benchKey("provider")
	consKey, consAddr := benchKey("consumer")
	chain := provider.NewMemChain(chainID)
	chain.Sender = provAddr
	chain.SetPubKey(consAddr, consKey.Public().(ed25519.PublicKey))
	chain.SetModel(tx.RegisterModel{ID: modelID, SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte(modelID))), Architecture: "synthetic", Parameters: 1, Quantization: "none", ContextLength: 4096})
	syn := &backend.Synthetic{Limit: *tokens}
	cfg := provider.DefaultConfig()
	cfg.Register, cfg.CreditUmyc = false, 100_000
	m := provider.DefaultModel()
	m.ID, m.GGUF, m.PriceInPerMTok, m.PriceOutPerMTok = modelID, "unused", 1_000_000, 2_000_000
	m.MaxConcurrent, m.QueueLength = 64, 1024
	cfg.Models = []provider.ModelConfig{m}
	store, err := provider.OpenStore(filepath.Join(dir, "data"), provider.StoreOptions{NoSync: *noSync})
	if err != nil {
		return err
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	p, err := provider.New(cfg, provider.Deps{Chain: chain, Address: provAddr, PrivKey: provKey, Backends: map[string]backend.Backend{modelID: syn}, Store: store, Registerer: reg})
	if err != nil {
		return err
	}
	if err := p.Prepare(ctx); err != nil {
		return err
	}
	provURL, stopProv, err := benchServe(p.Handler())
	if err != nil {
		return err
	}
	defer stopProv()
	directURL, stopDirect, err := benchServe(directHandler(syn))
	if err != nil {
		return err
	}
	defer stopDirect()

	res := providerBenchResult{Benchmark: "provider", Requests: *n, Tokens: *tokens, Stream: *stream, Store: "fsync",
		Concurrency: *conc, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if *noSync {
		res.Store = "nosync"
	}
	body := []byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Say something."}],"max_tokens":%d,"stream":%v}`, modelID, *tokens, *stream))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

	// Each client is a consumer with its own channel that pays every receipt, as a gateway does.
	var chanSeq uint64
	var chanMu sync.Mutex
	newPayer := func() *payer {
		chanMu.Lock()
		chanSeq++
		id := chanSeq
		chanMu.Unlock()
		chain.SetChannel(ledger.Channel{ID: id, Consumer: consAddr, Provider: provAddr, Deposit: 1 << 60, OpenedHeight: 1})
		return &payer{chainID: chainID, channel: id, key: consKey}
	}
	one := func(url string, pay *payer) (time.Duration, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if pay != nil {
			req.Header.Set(channel.HeaderVoucher, pay.header()) // signed before the clock starts
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		el := time.Since(start)
		if err != nil || resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d: %s %v", resp.StatusCode, b, err)
		}
		if pay != nil {
			if err := pay.observe(resp.Header.Get(channel.HeaderReceipt), b); err != nil {
				return 0, err
			}
		}
		return el, nil
	}

	// Latency: alternate direct and provider requests so drift hits both alike.
	seqPayer := newPayer()
	for i := 0; i < 200; i++ { // warm up connections and caches
		if _, err := one(directURL, nil); err != nil {
			return fmt.Errorf("bench provider: direct: %w", err)
		}
		if _, err := one(provURL, seqPayer); err != nil {
			return fmt.Errorf("bench provider: provider: %w", err)
		}
	}
	verifiesBefore := counterValue(reg, "mycel_provider_voucher_verifications_total")
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench provider: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench provider: %w", err)
		}
	}
	var direct, prov []time.Duration
	for i := 0; i < *n; i++ {
		d, err := one(directURL, nil)
		if err != nil {
			return fmt.Errorf("bench provider: direct: %w", err)
		}
		pd, err := one(provURL, seqPayer)
		if err != nil {
			return fmt.Errorf("bench provider: provider: %w", err)
		}
		direct, prov = append(direct, d), append(prov, pd)
	}
	pprof.StopCPUProfile()
	res.VerifiesPerRequest = (counterValue(reg, "mycel_provider_voucher_verifications_total") - verifiesBefore) / float64(*n)
	res.Direct, res.Provider = series(direct), series(prov)
	res.OverheadP50Us = res.Provider.P50Us - res.Direct.P50Us
	res.OverheadP99Us = res.Provider.P99Us - res.Direct.P99Us

	// Throughput: conc clients, each with its own channel, for the same number of requests.
	rps := func(url string, paid bool) (float64, error) {
		var wg sync.WaitGroup
		errc := make(chan error, *conc)
		per := *n / *conc
		start := time.Now()
		for c := 0; c < *conc; c++ {
			var pay *payer
			if paid {
				pay = newPayer()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					if _, err := one(url, pay); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return 0, err
		}
		return float64(per**conc) / time.Since(start).Seconds(), nil
	}
	if res.DirectRPS, err = rps(directURL, false); err != nil {
		return fmt.Errorf("bench provider: direct throughput: %w", err)
	}
	if res.ProviderRPS, err = rps(provURL, true); err != nil {
		return fmt.Errorf("bench provider: provider throughput: %w", err)
	}

	// Unit costs.
	v := channel.SignVoucher(chainID, 1, 12345, consKey)
	pub := consKey.Public().(ed25519.PublicKey)
	res.VoucherVerifyUs = perOpUs(2000, func() { _ = v.Verify(pub) })
	rc := channel.Receipt{ChainID: chainID, RequestID: "0123456789abcdef01234567", Provider: provAddr, Consumer: consAddr, ChannelID: 1,
		ModelID: modelID, ModelSHA256: fmt.Sprintf("%x", sha256.Sum256(nil)), RequestHash: fmt.Sprintf("%x", sha256.Sum256(body)),
		OutputHash: fmt.Sprintf("%x", sha256.Sum256(nil)), TokensIn: 5, TokensOut: uint64(*tokens), PriceInPerMTok: 1, PriceOutPerMTok: 2,
		Cost: 1, Cumulative: 100, LogprobsCommitment: channel.LogprobsCommitment(nil, nil), FinishReason: "length", TimeUnixMs: time.Now().UnixMilli()}
	res.ReceiptSignUs = perOpUs(2000, func() { rc = channel.SignReceipt(rc, provKey) })
	cst, err := provider.OpenStore(filepath.Join(dir, "commit"), provider.StoreOptions{NoSync: *noSync})
	if err != nil {
		return err
	}
	var commits []time.Duration
	for i := 1; i <= 500; i++ {
		rc.RequestID = fmt.Sprint(i)
		start := time.Now()
		if err := cst.Commit(provider.ChannelRecord{ID: 1, Delivered: uint64(i)}, rc); err != nil {
			cst.Close()
			return fmt.Errorf("bench provider: %w", err)
		}
		commits = append(commits, time.Since(start))
	}
	cst.Close()
	res.StoreCommitP50Us = series(commits).P50Us

	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "provider overhead: %d sequential requests each way, %d output tokens, stream=%v, store=%s, %d CPUs, %s\n", *n, *tokens, *stream, res.Store, res.CPUs, res.GoVersion)
	fmt.Fprintf(tw, "series\tp50 µs\tp99 µs\tmean µs\n")
	fmt.Fprintf(tw, "direct (bare handler, same backend)\t%.1f\t%.1f\t%.1f\n", res.Direct.P50Us, res.Direct.P99Us, res.Direct.MeanUs)
	fmt.Fprintf(tw, "through the provider\t%.1f\t%.1f\t%.1f\n", res.Provider.P50Us, res.Provider.P99Us, res.Provider.MeanUs)
	fmt.Fprintf(tw, "overhead\t%.1f\t%.1f\t\n", res.OverheadP50Us, res.OverheadP99Us)
	fmt.Fprintf(tw, "throughput, %d clients\tdirect %.0f req/s\tprovider %.0f req/s\t\n", *conc, res.DirectRPS, res.ProviderRPS)
	fmt.Fprintf(tw, "unit costs\tvoucher verify %.1f µs\treceipt sign %.1f µs\tstore commit p50 %.1f µs\n", res.VoucherVerifyUs, res.ReceiptSignUs, res.StoreCommitP50Us)
	fmt.Fprintf(tw, "voucher checks per request\t%.3f\t\t\n", res.VerifiesPerRequest)
	return tw.Flush()
}

func benchKey(name string) (ed25519.PrivateKey, string) {
	s := sha256.Sum256([]byte("mycel-bench-provider/" + name))
	k := ed25519.NewKeyFromSeed(s[:])
	return k, address.FromPubKey(k.Public().(ed25519.PublicKey))
}

func perOpUs(n int, f func()) float64 {
	start := time.Now()
	for i := 0; i < n; i++ {
		f()
	}
	return float64(time.Since(start).Nanoseconds()) / 1e3 / float64(n)
}

func counterValue(g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

// payer signs vouchers for one channel, each covering the last receipt's cumulative.
type payer struct {
	chainID string
	channel uint64
	key     ed25519.PrivateKey
	paid    uint64
}

func (p *payer) header() string {
	s, _ := channel.EncodeHeader(channel.SignVoucher(p.chainID, p.channel, p.paid, p.key))
	return s
}

// observe takes the receipt of an answer (header, or the SSE receipt event in body).
func (p *payer) observe(hdr string, body []byte) error {
	if hdr != "" {
		rc, err := channel.DecodeReceiptHeader(hdr)
		if err != nil {
			return err
		}
		p.paid = rc.Cumulative
		return nil
	}
	r := openai.NewSSEReader(bytes.NewReader(body))
	for {
		d, err := r.Next()
		if err != nil {
			return fmt.Errorf("no receipt in the answer: %w", err)
		}
		var ev channel.ReceiptEvent
		if json.Unmarshal(d, &ev) == nil && ev.Object == channel.ReceiptEventObject {
			p.paid = ev.Receipt.Cumulative
			return nil
		}
	}
}

func benchServe(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// directHandler serves the backend with a bare OpenAI chat handler: decode, generate, encode.
// It is the baseline the provider's overhead is measured against.
func directHandler(b backend.Backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		req, e := openai.DecodeChatRequest(body)
		if e != nil {
			openai.WriteError(w, e)
			return
		}
		n, _ := req.MaxOutputTokens()
		br := backend.Request{Chat: true, Messages: req.Messages, MaxTokens: n}
		if err := b.Prepare(&br); err != nil {
			openai.WriteError(w, &openai.Error{Status: 400, Message: err.Error()})
			return
		}
		id := "chatcmpl-direct"
		if req.Stream {
			sw, err := openai.NewSSEWriter(w)
			if err != nil {
				return
			}
			_ = sw.WriteJSON(openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Model: req.Model, Choices: []openai.ChatChunkChoice{{Delta: openai.ChatDelta{Role: "assistant"}}}})
			res, _ := b.Generate(r.Context(), &br, func(c backend.Chunk) error {
				return sw.WriteJSON(openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Model: req.Model, Choices: []openai.ChatChunkChoice{{Delta: openai.ChatDelta{Content: c.Text}}}})
			})
			_ = sw.WriteJSON(openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Model: req.Model, Choices: []openai.ChatChunkChoice{{FinishReason: openai.Ptr(res.FinishReason)}}})
			_ = sw.WriteDone()
			return
		}
		var out bytes.Buffer
		res, _ := b.Generate(r.Context(), &br, func(c backend.Chunk) error { out.WriteString(c.Text); return nil })
		cc := openai.ChatCompletion{ID: id, Object: openai.ObjectChatCompletion, Model: req.Model,
			Choices: []openai.ChatChoice{{Message: openai.ChatMessage{Role: "assistant", Content: out.String()}, FinishReason: res.FinishReason}},
			Usage:   &openai.Usage{PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens, TotalTokens: res.PromptTokens + res.CompletionTokens}}
		b, _ := json.Marshal(cc)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}
