//go:build peer

package provider

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tx"
)

// TestOllamaAdapter serves a demo GGUF with a real Ollama server (MYCEL_OLLAMA, built by
// scripts/build-peer.sh) on 127.0.0.1 and puts the provider's OpenAI adapter in front of it:
// paid chat and completion requests, streaming and not, with logprobs, receipts verified;
// then the server is stopped and the model must turn unhealthy.
// MYCEL_MODELS names a directory with mycel-ref.gguf (generated if unset).
func TestOllamaAdapter(t *testing.T) {
	bin := os.Getenv("MYCEL_OLLAMA")
	if bin == "" {
		t.Skip("MYCEL_OLLAMA is not set (scripts/peer-check.sh sets it)")
	}
	bin = fromRepo(t, bin)
	gguf := ""
	if dir := os.Getenv("MYCEL_MODELS"); dir != "" {
		gguf = fromRepo(t, filepath.Join(dir, "mycel-ref.gguf"))
	} else {
		gguf = demoModels(t)["mycel-ref"].Path
	}
	home := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	env := append(os.Environ(), "OLLAMA_HOST="+host, "OLLAMA_MODELS="+filepath.Join(home, "models"), "HOME="+home)
	serve := exec.Command(bin, "serve")
	serve.Env = env
	logf, _ := os.Create(filepath.Join(home, "ollama.log"))
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			// Interrupted, ollama unloads its model runners (child processes a kill of
			// the server alone would leave running) and exits.
			done := make(chan struct{})
			go func() {
				_ = serve.Wait()
				close(done)
			}()
			if serve.Process.Signal(os.Interrupt) == nil {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Second):
				}
			}
			_ = serve.Process.Kill()
			<-done
		}
	}
	defer stop()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(home, "ollama.log"))
			t.Logf("ollama log:\n%s", b)
		}
	}()
	base := "http://" + host
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/api/version")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ollama did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mf := filepath.Join(home, "Modelfile")
	if err := os.WriteFile(mf, []byte("FROM "+gguf+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	create := exec.Command(bin, "create", "mycel-ref", "-f", mf)
	create.Env = env
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("ollama create: %v\n%s", err, out)
	}

	tok, ctxLen, sha, err := tokenizerOf(gguf)
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := backend.LookupProfile("ollama")
	format, err := chatFormatOf(gguf)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: base + "/v1", Profile: prof, Model: "mycel-ref", Tokenizer: tok, ContextLength: ctxLen, SHA256: sha, ChatFormat: format})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Health(context.Background()); err != nil {
		t.Fatalf("health of a running ollama: %v", err)
	}

	provKey, provAddr := testKey("provider")
	aliceKey, alice := testKey("alice")
	chain := NewMemChain(testChain)
	chain.Sender = provAddr
	chain.SetPubKey(alice, aliceKey.Public().(ed25519.PublicKey))
	chain.SetModel(tx.RegisterModel{ID: "mycel-ref", SHA256: sha, Architecture: "qwen2", Parameters: 1, Quantization: "F32", ContextLength: 2048})
	chain.SetChannel(ledgerChannel(1, alice, provAddr, 10_000_000))
	cfg := testConfig()
	cfg.CreditUmyc = 1_000_000
	m := cfg.Models[0]
	m.ID, m.Backend, m.BaseURL, m.Profile, m.ModelName = "mycel-ref", BackendOpenAI, base+"/v1", "ollama", "mycel-ref"
	cfg.Models[0] = m
	store, err := OpenStore(filepath.Join(t.TempDir(), "data"), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p, err := New(cfg, Deps{Chain: chain, Address: provAddr, PrivKey: provKey, Backends: map[string]backend.Backend{"mycel-ref": ob}, Store: store, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	pub := provKey.Public().(ed25519.PublicKey)
	var paid uint64
	post := func(path, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		v, _ := channel.EncodeHeader(channel.SignVoucher(testChain, 1, paid, aliceKey))
		req.Header.Set(channel.HeaderVoucher, v)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// Non-streaming chat with logprobs.
	resp := post("/v1/chat/completions", `{"model":"mycel-ref","messages":[{"role":"user","content":"What is a goroutine?"}],"max_tokens":12,"temperature":0,"logprobs":true,"top_logprobs":2}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	var cc openai.ChatCompletion
	if err := json.Unmarshal(b, &cc); err != nil {
		t.Fatal(err)
	}
	rc, err := channel.DecodeReceiptHeader(resp.Header.Get(channel.HeaderReceipt))
	if err != nil || rc.Verify(pub) != nil {
		t.Fatalf("receipt %+v: %v", rc, err)
	}
	if cc.Choices[0].Message.Content == "" || rc.TokensOut == 0 || rc.TokensIn == 0 || rc.ModelSHA256 != sha {
		t.Errorf("answer %q, receipt %+v", cc.Choices[0].Message.Content, rc)
	}
	if lp := cc.Choices[0].Logprobs; lp == nil || len(lp.Content) == 0 {
		t.Errorf("no logprobs from ollama through the adapter: %s", b)
	} else if rc.LogprobsCommitment == channel.LogprobsCommitment(nil, nil) {
		t.Error("receipt commits to no logprobs")
	}
	paid = rc.Cumulative
	t.Logf("chat: %q, %d+%d tokens, cost %d", cc.Choices[0].Message.Content, rc.TokensIn, rc.TokensOut, rc.Cost)

	// Continuation (the gateway's failover): the first tokens of a greedy answer as a
	// trailing assistant message with continue_final_message. Ollama's chat endpoint would
	// close that turn (its template inferred from the GGUF has no open last message); the
	// adapter renders the open turn and sends it raw to /api/generate, so prefix and
	// continuation make the uninterrupted answer.
	chatText := func(body string) string {
		t.Helper()
		resp := post("/v1/chat/completions", body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("chat: %d %s", resp.StatusCode, b)
		}
		var cc openai.ChatCompletion
		if err := json.Unmarshal(b, &cc); err != nil {
			t.Fatal(err)
		}
		rc, err := channel.DecodeReceiptHeader(resp.Header.Get(channel.HeaderReceipt))
		if err != nil {
			t.Fatal(err)
		}
		paid = rc.Cumulative
		return cc.Choices[0].Message.Content
	}
	whole := chatText(`{"model":"mycel-ref","messages":[{"role":"user","content":"Tell a story"}],"max_tokens":16,"temperature":0,"logprobs":true}`)
	var toks []string
	{
		resp := post("/v1/chat/completions", `{"model":"mycel-ref","messages":[{"role":"user","content":"Tell a story"}],"max_tokens":16,"temperature":0,"logprobs":true}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var cc openai.ChatCompletion
		if err := json.Unmarshal(b, &cc); err != nil || cc.Choices[0].Logprobs == nil {
			t.Fatalf("chat with logprobs: %s", b)
		}
		rc, _ := channel.DecodeReceiptHeader(resp.Header.Get(channel.HeaderReceipt))
		paid = rc.Cumulative
		for _, tl := range cc.Choices[0].Logprobs.Content {
			toks = append(toks, tl.Token)
		}
	}
	if len(toks) < 8 {
		t.Fatalf("greedy answer %q has %d tokens, want 8 or more", whole, len(toks))
	}
	prefix := strings.Join(toks[:5], "")
	pj, _ := json.Marshal(prefix)
	rest := chatText(`{"model":"mycel-ref","messages":[{"role":"user","content":"Tell a story"},{"role":"assistant","content":` + string(pj) + `}],"max_tokens":11,"temperature":0,"continue_final_message":true,"add_generation_prompt":false}`)
	t.Logf("continuation: whole %q, prefix %q, rest %q", whole, prefix, rest)
	if prefix+rest != whole {
		t.Errorf("prefix %q + continuation %q != the uninterrupted answer %q", prefix, rest, whole)
	}

	// Streaming completion.
	resp = post("/v1/completions", `{"model":"mycel-ref","prompt":"func main() {","max_tokens":10,"temperature":0,"stream":true}`)
	evs, done := readStream(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !done || len(evs) < 2 {
		t.Fatalf("stream: %d done=%v %d events", resp.StatusCode, done, len(evs))
	}
	var re channel.ReceiptEvent
	if err := json.Unmarshal(evs[len(evs)-1], &re); err != nil || re.Receipt.Verify(pub) != nil || re.Receipt.Cumulative != paid+re.Receipt.Cost {
		t.Fatalf("stream receipt %s: %v", evs[len(evs)-1], err)
	}
	var text strings.Builder
	for _, ev := range evs[:len(evs)-1] {
		var c openai.CompletionChunk
		if json.Unmarshal(ev, &c) == nil && len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Text)
		}
	}
	if text.Len() == 0 || re.Receipt.OutputHash != sum(text.String()) {
		t.Errorf("streamed %q, receipt output hash %s", text.String(), re.Receipt.OutputHash)
	}

	// The engine stops answering: the model turns unhealthy and requests get 503.
	stop()
	p.probe(context.Background())
	resp = post("/v1/chat/completions", `{"model":"mycel-ref","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after ollama stopped: %d, want 503", resp.StatusCode)
	}
	hr, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz %d after ollama stopped", hr.StatusCode)
	}
}

// fromRepo resolves a relative path against the repository root (the directory of go.mod),
// as the peer scripts pass them.
func fromRepo(t *testing.T, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, p)
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}
