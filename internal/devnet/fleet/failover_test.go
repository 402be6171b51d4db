package fleet_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/devnet/fleet"
	"github.com/mycel-network/mycel/internal/openai"
)

// TestKilledMidStream kills the provider serving a streamed greedy answer
// after a few chunks (its connections drop, as when the process dies): the
// gateway continues the answer on another provider, and the client gets a
// complete stream whose text is exactly that of an uninterrupted run (the
// engine is bit-reproducible and the next provider continues the partial
// answer as an open assistant turn).
func TestKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("generates the demo models and loads three engines; skipped with -short")
	}
	if raceEnabled {
		t.Skip("model generation and the engine take minutes under -race")
	}
	d, err := devnet.New(devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chainCtx, stopChain := context.WithCancel(ctx)
	chainDone := make(chan error, 1)
	go func() { chainDone <- d.Run(chainCtx) }()
	defer func() { stopChain(); <-chainDone }()
	if err := d.WaitHeight(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	fl, err := fleet.New(ctx, fleet.Config{Devnet: d, GatewayAddr: "127.0.0.1:0", NoVerifier: true})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { runDone <- fl.Run(runCtx, func() { close(ready) }) }()
	defer func() {
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("fleet Run: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-runDone:
		t.Fatalf("fleet stopped before ready: %v", err)
	}

	// The reference: the same greedy request, uninterrupted.
	body := `{"model":"mycel-ref","max_tokens":400,"temperature":0,"stream":true,"messages":[{"role":"user","content":"Tell a long story"}]}`
	want, _, wantFinish, _ := streamChat(ctx, t, fl, body, nil)
	if failovers := fl.Traffic().Failovers; failovers != 0 {
		t.Fatalf("%d failovers before any kill", failovers)
	}

	killed := false
	got, chunks, finish, first := streamChat(ctx, t, fl, body, func(chunks int, provider string) {
		if chunks == 4 && !killed {
			killed = true
			if err := fl.KillProvider(provider); err != nil {
				t.Fatal(err)
			}
		}
	})
	if !killed {
		t.Fatalf("the answer ended after %d chunks, before the kill", chunks)
	}
	if got := fl.Traffic().Failovers; got != 1 || finish == "" {
		t.Errorf("failovers %d, finish %q after killing %s: want 1 failover and a finished answer", got, finish, first)
	}
	// The next provider continued the partial answer (an open assistant turn on the
	// built-in engine) instead of restarting it: the text is the uninterrupted one.
	if got != want || finish != wantFinish {
		t.Errorf("answer across the kill (finish %q):\n%q\nwant the uninterrupted greedy answer (finish %q):\n%q", finish, got, wantFinish, want)
	}
}

// streamChat posts a streamed chat request to the fleet's gateway and reads it to [DONE],
// calling onChunk (if set) after each content chunk with their count so far and the
// provider that first served the answer. It returns the text, the chunk count, the
// finish reason and that provider.
func streamChat(ctx context.Context, t *testing.T, fl *fleet.Fleet, body string, onChunk func(chunks int, provider string)) (text string, chunks int, finish, provider string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", fl.GatewayURL()+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fl.APIKey())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %s: %s", resp.Status, raw)
	}
	provider = resp.Header.Get("X-Mycel-Provider")
	r := openai.NewSSEReader(resp.Body)
	var b strings.Builder
	for {
		data, err := r.Next()
		if errors.Is(err, io.EOF) {
			break // [DONE]
		}
		if err != nil {
			t.Fatalf("stream broke after %d chunks: %v", chunks, err)
		}
		var c struct {
			Choices []struct {
				Delta        struct{ Content string } `json:"delta"`
				FinishReason *string                  `json:"finish_reason"`
			} `json:"choices"`
		}
		if json.Unmarshal(data, &c) != nil || len(c.Choices) == 0 {
			continue
		}
		if f := c.Choices[0].FinishReason; f != nil {
			finish = *f
		}
		if c.Choices[0].Delta.Content != "" {
			chunks++
			b.WriteString(c.Choices[0].Delta.Content)
			if onChunk != nil {
				onChunk(chunks, provider)
			}
		}
	}
	return b.String(), chunks, finish, provider
}
