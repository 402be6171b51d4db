package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/mycel-network/mycel/internal/gateway"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/gateway/gatewaytest"
)

// gatewayBenchTarget is one row of `mycel bench gateway`.
type gatewayBenchTarget struct {
	Name       string  `json:"name"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	AddedP50Ms float64 `json:"added_p50_ms"`
	AddedP99Ms float64 `json:"added_p99_ms"`
	TTFTP50Ms  float64 `json:"ttft_p50_ms"`
	TTFTP99Ms  float64 `json:"ttft_p99_ms"`
	AddedTTFT  float64 `json:"added_ttft_p50_ms"`
	MaxRPS     float64 `json:"max_rps"`
	// ReqPerCPUSec is closed-loop requests per CPU-second of the whole process (load generator,
	// provider and proxy or gateway): unlike max_rps it does not depend on foreign load.
	ReqPerCPUSec float64 `json:"req_per_cpu_sec"`
	// AddedCPUUs is the CPU time per request added over (a), in microseconds.
	AddedCPUUs float64 `json:"added_cpu_us"`
}

type gatewayBenchResult struct {
	Benchmark   string               `json:"benchmark"`
	RPS         int                  `json:"rps"`
	Duration    string               `json:"duration"`
	StreamRPS   int                  `json:"stream_rps"`
	Concurrency int                  `json:"concurrency"`
	CPUs        int                  `json:"cpus"`
	GoVersion   string               `json:"go_version"`
	Targets     []gatewayBenchTarget `json:"targets"`
	Note        string               `json:"note"`
}

const benchChatBody = `{"model":"bench-model","messages":[{"role":"user","content":"say hello please"}],"max_tokens":16}`
const benchStreamBody = `{"model":"bench-model","messages":[{"role":"user","content":"say hello please"}],"max_tokens":16,"stream":true}`

func benchGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench gateway", stderr)
	rps := fs.Int("rps", 1000, "open-loop request rate for the latency measurement")
	dur := fs.Duration("duration", 5*time.Second, "length of each measurement")
	streamRPS := fs.Int("stream-rps", 200, "open-loop rate of streaming requests for the TTFT measurement")
	conc := fs.Int("concurrency", 64, "closed-loop clients for the max-RPS measurement")
	output := fs.String("output", "text", "text or json")
	only := fs.String("only", "", "run only targets whose name contains this (a, b or c)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("bench gateway: --output %q: want text or json", *output)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench gateway: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench gateway: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// (a) a zero-latency fake provider.
	pk, paddr := gatewaytest.Key("bench-provider")
	gk, gaddr := gatewaytest.Key("bench-gateway")
	prov := gatewaytest.NewProvider(gatewaytest.ProviderConfig{Key: pk, Address: paddr, ChainID: "bench", Model: "bench-model",
		PriceIn: 1000, PriceOut: 2000, ConsumerAddress: gaddr, SkipPayment: true})
	provURL, err := serveBench(ctx, prov)
	if err != nil {
		return err
	}
	// (b) a plain reverse proxy.
	u, _ := url.Parse(provURL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.Transport = benchTransport()
	proxyURL, err := serveBench(ctx, rp)
	if err != nil {
		return err
	}
	// (c) the gateway: API key, routing, vouchers, receipt verification and log.
	dir, err := os.MkdirTemp("", "mycel-bench-gateway-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	led := gatewaytest.NewLedger("bench")
	led.AddModel("bench-model")
	led.AddProvider(paddr, provURL, pk.Public().(ed25519.PublicKey), "bench-model", 1000, 2000)
	keys, err := apikey.Open(dir + "/keys.jsonl")
	if err != nil {
		return err
	}
	defer keys.Close()
	secret, _, err := keys.Create("bench", 0, 0, 0, time.Now())
	if err != nil {
		return err
	}
	receipts, err := gateway.OpenReceiptLog(dir + "/receipts.jsonl")
	if err != nil {
		return err
	}
	defer receipts.Close()
	gw, err := gateway.New(gateway.Config{}, gateway.Deps{Chain: led, ConsumerKey: gk, ConsumerAddress: gaddr, Keys: keys, Receipts: receipts})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go gw.Serve(ctx, ln)
	gwURL := "http://" + ln.Addr().String()

	targets := []struct{ name, url, auth string }{
		{"(a) direct to provider", provURL, ""},
		{"(b) httputil.ReverseProxy", proxyURL, ""},
		{"(c) mycel gateway", gwURL, "Bearer " + secret},
	}
	client := &http.Client{Transport: benchTransport(), Timeout: 30 * time.Second}
	res := gatewayBenchResult{Benchmark: "gateway", RPS: *rps, Duration: dur.String(), StreamRPS: *streamRPS, Concurrency: *conc,
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Note: "(d) Bifrost omitted: github.com/maximhq/bifrost/core is not available from the module proxy (403)"}
	for _, t := range targets {
		if *only != "" && !strings.Contains(t.name, "("+*only+")") {
			continue
		}
		do := func(stream bool) (time.Duration, time.Duration, error) {
			return benchRequest(ctx, client, t.url, t.auth, stream)
		}
		for i := 0; i < 200; i++ { // warm up connections and caches
			if _, _, err := do(false); err != nil {
				return fmt.Errorf("bench gateway: %s: %w", t.name, err)
			}
		}
		fmt.Fprintf(stderr, "%s: open loop %d rps for %s…\n", t.name, *rps, dur)
		lat, errs := openLoop(ctx, *rps, *dur, func() (time.Duration, error) { d, _, err := do(false); return d, err })
		fmt.Fprintf(stderr, "%s: streaming %d rps for %s…\n", t.name, *streamRPS, dur)
		ttft, serrs := openLoop(ctx, *streamRPS, *dur, func() (time.Duration, error) { _, f, err := do(true); return f, err })
		fmt.Fprintf(stderr, "%s: closed loop, %d clients for %s…\n", t.name, *conc, dur)
		cpu0 := cpuTime()
		n := closedLoop(ctx, *conc, *dur, func() error { _, _, err := do(false); return err })
		cpu := cpuTime() - cpu0
		row := gatewayBenchTarget{Name: t.name, Requests: len(lat) + len(ttft), Errors: errs + serrs,
			P50Ms: pct(lat, 50), P99Ms: pct(lat, 99), TTFTP50Ms: pct(ttft, 50), TTFTP99Ms: pct(ttft, 99), MaxRPS: float64(n) / dur.Seconds()}
		if cpu > 0 {
			row.ReqPerCPUSec = float64(n) / cpu.Seconds()
		}
		if len(res.Targets) > 0 {
			base := res.Targets[0]
			row.AddedP50Ms, row.AddedP99Ms, row.AddedTTFT = row.P50Ms-base.P50Ms, row.P99Ms-base.P99Ms, row.TTFTP50Ms-base.TTFTP50Ms
			if row.ReqPerCPUSec > 0 && base.ReqPerCPUSec > 0 {
				row.AddedCPUUs = (1/row.ReqPerCPUSec - 1/base.ReqPerCPUSec) * 1e6
			}
		}
		res.Targets = append(res.Targets, row)
	}
	if *output == "json" {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "gateway overhead: %d rps open loop, %d rps streaming, %d closed-loop clients, %s each, %d CPUs\n\n", *rps, *streamRPS, *conc, dur, res.CPUs)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tp50 ms\tp99 ms\tadded p50\tadded p99\tTTFT p50\tTTFT p99\tadded TTFT\tmax RPS\treq/CPU-s\tadded CPU µs\terrors\t")
	for _, r := range res.Targets {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%+.3f\t%+.3f\t%.3f\t%.3f\t%+.3f\t%.0f\t%.0f\t%+.0f\t%d\t\n", r.Name, r.P50Ms, r.P99Ms, r.AddedP50Ms, r.AddedP99Ms, r.TTFTP50Ms, r.TTFTP99Ms, r.AddedTTFT, r.MaxRPS, r.ReqPerCPUSec, r.AddedCPUUs, r.Errors)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\n"+res.Note)
	return nil
}

func benchTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 4096, 4096
	return tr
}

func serveBench(ctx context.Context, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return "http://" + ln.Addr().String(), nil
}

// benchRequest sends one chat request and returns the time to the full answer and to the
// first SSE data line (streaming).
func benchRequest(ctx context.Context, c *http.Client, base, auth string, stream bool) (time.Duration, time.Duration, error) {
	body := benchChatBody
	if stream {
		body = benchStreamBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var first time.Duration
	if stream {
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadBytes('\n')
			if bytes.HasPrefix(line, []byte("data: {")) && first == 0 {
				first = time.Since(t0)
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return 0, 0, err
			}
		}
	} else if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, 0, err
	}
	return time.Since(t0), first, nil
}

// openLoop starts f at a fixed rate for d, whatever the latency, and returns the latencies
// measured from each request's scheduled start (no coordinated omission) and the error count.
func openLoop(ctx context.Context, rate int, d time.Duration, f func() (time.Duration, error)) ([]time.Duration, int) {
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	var errs atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := t0.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			delay := max(time.Since(at), 0) // time the request waited to be started
			l, err := f()
			if err != nil {
				errs.Add(1)
				return
			}
			mu.Lock()
			lat = append(lat, l+delay)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, int(errs.Load())
}

// closedLoop runs conc clients back to back for d and returns how many requests completed.
func closedLoop(ctx context.Context, conc int, d time.Duration, f func() error) int {
	var done atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if f() == nil {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(done.Load())
}

func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return float64(s[max(i-1, 0)]) / float64(time.Millisecond)
}
