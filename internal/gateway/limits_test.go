package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
)

// want429 checks that err is a 429 with code and a positive Retry-After.
func want429(t *testing.T, err error, code string) {
	t.Helper()
	var ae *oai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("err = %v, want 429", err)
	}
	if ae.Code != code {
		t.Errorf("429 code = %q, want %q", ae.Code, code)
	}
	if ra, err := strconv.Atoi(ae.Response.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q, want a positive number of seconds", ae.Response.Header.Get("Retry-After"))
	}
}

func TestRateLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("rpm", func(t *testing.T) {
		e := newEnv(t, Config{}, cheap("a"))
		secret, _, err := e.keys.Create("rpm", 0, 2, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c := e.client(option.WithAPIKey(secret))
		for i := 0; i < 2; i++ {
			if _, err := c.Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
				t.Fatalf("request %d within the limit: %v", i, err)
			}
		}
		_, err = c.Chat.Completions.New(ctx, chatParams(testPrompt))
		want429(t, err, "rate_limit_exceeded")
		// Another key is not limited by this one's requests.
		if _, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
			t.Errorf("other key: %v", err)
		}
	})
	t.Run("tpm", func(t *testing.T) {
		e := newEnv(t, Config{}, cheap("a"))
		secret, _, err := e.keys.Create("tpm", 0, 0, 5, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c := e.client(option.WithAPIKey(secret))
		if _, err := c.Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
			t.Fatal(err) // admitted with 0 tokens used; it uses 11
		}
		e.settled() // its tokens are counted once its receipt is
		_, err = c.Chat.Completions.New(ctx, chatParams(testPrompt))
		want429(t, err, "rate_limit_exceeded")
	})
}

// TestNoMatchUnhealthyAndTooSlow: the 503 names a provider that failed its health probe and
// one whose p95 time to first token is above x-mycel-max-ttft-ms.
func TestNoMatchUnhealthyAndTooSlow(t *testing.T) {
	e := newEnv(t, Config{NoHedge: true}, cheap("a"), dear("b"))
	ctx := context.Background()
	if err := e.gw.dir.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	e.provs["a"].SetHealthy(false)
	e.gw.dir.probe(ctx)
	for i := 0; i < 5; i++ { // b's first tokens took 500 ms
		e.gw.stats.Start(e.addrs["b"])
		e.gw.stats.Done(e.addrs["b"], routerOutcome(500*time.Millisecond), time.Now())
	}
	_, err := e.client(option.WithHeader(HeaderMaxTTFT, "100")).Chat.Completions.New(ctx, chatParams(testPrompt))
	var ae *oai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want 503", err)
	}
	for _, want := range []string{e.addrs["a"] + ": unhealthy", e.addrs["b"] + ": too_slow (p95 time to first token 500 ms exceeds max 100 ms)"} {
		if !strings.Contains(ae.Message, want) {
			t.Errorf("503 message %q does not contain %q", ae.Message, want)
		}
	}
	// Without the limit b serves.
	var resp *http.Response
	if _, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt), option.WithResponseInto(&resp)); err != nil || resp.Header.Get(HeaderProvider) != e.addrs["b"] {
		t.Errorf("without a ttft limit: err %v, want an answer from b", err)
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	ctx := context.Background()
	check := func(step string, wantStatus int, wantReason string) {
		t.Helper()
		resp, err := http.Get(e.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Status, Reason string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if resp.StatusCode != wantStatus || !strings.Contains(body.Reason, wantReason) {
			t.Errorf("%s: /healthz = %d %+v, want %d with reason containing %q", step, resp.StatusCode, body, wantStatus, wantReason)
		}
	}
	check("healthy", http.StatusOK, "")
	e.provs["a"].SetHealthy(false)
	e.gw.dir.probe(ctx)
	check("provider unhealthy", http.StatusServiceUnavailable, "no healthy provider")
	e.provs["a"].SetHealthy(true)
	e.gw.dir.probe(ctx)
	check("provider back", http.StatusOK, "")
	e.ledger.SetDown(errors.New("connection refused"))
	if err := e.gw.dir.refresh(ctx); err == nil {
		t.Fatal("refresh with the ledger down succeeded")
	}
	check("ledger down", http.StatusServiceUnavailable, "ledger unreachable: providers: connection refused")
	e.ledger.SetDown(nil)
	if err := e.gw.dir.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check("ledger back", http.StatusOK, "")
}

// metricValue scrapes /metrics and returns the value of the sample named series (name and
// labels as the text format writes them), 0 if absent.
func metricValue(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

func TestMetricsCountRequests(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	series := map[string]string{
		"requests": `mycel_gateway_requests_total{code="200",route="chat"}`,
		"attempts": `mycel_gateway_upstream_attempts_total{outcome="ok"}`,
		"receipts": `mycel_gateway_receipts_total{result="ok"}`,
		"errors":   `mycel_gateway_requests_total{code="404",route="chat"}`,
	}
	before := map[string]float64{}
	for k, s := range series {
		before[k] = metricValue(t, e.url, s)
	}
	if _, err := e.client().Chat.Completions.New(context.Background(), chatParams(testPrompt)); err != nil {
		t.Fatal(err)
	}
	p := chatParams(testPrompt)
	p.Model = "no-such-model"
	if _, err := e.client().Chat.Completions.New(context.Background(), p); err == nil {
		t.Fatal("unknown model answered")
	}
	e.settled()
	// The request counter is incremented after the response is written: poll for it.
	waitFor(t, "the request counters", func() bool {
		return metricValue(t, e.url, series["requests"]) == before["requests"]+1 && metricValue(t, e.url, series["errors"]) == before["errors"]+1
	})
	for _, k := range []string{"attempts", "receipts"} {
		if got := metricValue(t, e.url, series[k]); got != before[k]+1 {
			t.Errorf("%s: %v after one answer, want %v", series[k], got, before[k]+1)
		}
	}
}
