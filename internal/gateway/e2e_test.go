package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/gateway/gwapi"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/provider"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/provider/reveal"
	"github.com/mycel-network/mycel/internal/tx"
)

// TestDevnetEndToEnd runs the gateway against real providers (internal/provider with the
// synthetic backend) on an in-process chain: channels opened on the ledger, receipts signed
// by the providers and verified, a provider killed mid-stream and the answer continued on
// the other one, and the key's spend equal to what the receipts and the delivered tokens say.
func TestDevnetEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain; skipped with -short")
	}
	sum := sha256.Sum256([]byte("synthetic"))
	d, err := devnet.New(devnet.Config{Dir: t.TempDir(), Genesis: func(g *ledger.Genesis) error {
		g.Models = append(g.Models, tx.RegisterModel{ID: "synthetic", SHA256: hex.EncodeToString(sum[:]), Architecture: "test",
			Parameters: 1, Quantization: "F32", ContextLength: 4096})
		return nil
	}})
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
	client, err := d.Client(0, chainclient.WithCommitTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	// Two providers: provider1 is cheaper (the primary) and generates only when the test
	// lets it; provider2 generates freely.
	gate := make(chan struct{})
	type running struct {
		stop func() // stops the provider and waits for it; safe to call twice
	}
	startProvider := func(name string, priceOut uint64, syn *backend.Synthetic) running {
		key, err := d.Key(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := provider.DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
		cfg.CreditUmyc = 50_000
		cfg.ChannelPoll = 100 * time.Millisecond
		cfg.ShutdownGrace = time.Millisecond // a stop kills open streams
		m := provider.DefaultModel()
		m.ID, m.GGUF = "synthetic", "unused.gguf"
		m.PriceInPerMTok, m.PriceOutPerMTok = 1_000_000, priceOut
		cfg.Models = []provider.ModelConfig{m}
		store, err := provider.OpenStore(cfg.DataDir, provider.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		hw := tx.Hardware{CPU: "test", Cores: 1, RAMBytes: 1 << 30}
		p, err := provider.New(cfg, provider.Deps{Chain: provider.ClientChain{C: client, S: client.NewSender(key)}, Address: key.Address,
			PrivKey: key.PrivKey, Backends: map[string]backend.Backend{"synthetic": syn}, Store: store, Registerer: prometheus.NewRegistry(), Hardware: &hw})
		if err != nil {
			t.Fatal(err)
		}
		pctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(pctx) }()
		select {
		case <-p.Ready():
		case err := <-done:
			t.Fatalf("%s stopped: %v", name, err)
		}
		var once sync.Once
		return running{stop: func() { once.Do(func() { stop(); <-done }) }}
	}
	p1 := startProvider("provider1", 2_000_000, &backend.Synthetic{Limit: 8, Gate: gate})
	defer p1.stop()
	p2 := startProvider("provider2", 3_000_000, &backend.Synthetic{Limit: 8})
	defer p2.stop()
	k1, _ := d.Key("provider1")
	k2, _ := d.Key("provider2")

	gwKey, err := d.Key("gateway")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ks, err := apikey.Open(filepath.Join(dir, "keys.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	secret, key, err := ks.Create("e2e", 0, 0, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rl, err := OpenReceiptLog(filepath.Join(dir, "receipts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	gw, err := New(Config{NoHedge: true}, Deps{Chain: LedgerChain{Client: client, Key: gwKey}, ConsumerKey: gwKey.PrivKey,
		ConsumerAddress: gwKey.Address, Keys: ks, Receipts: rl, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, gw)
	sdk := oai.NewClient(option.WithBaseURL(srv+"/v1/"), option.WithAPIKey(secret), option.WithMaxRetries(0))

	// 1. A streamed answer from provider1, killed after three tokens: provider2 continues it.
	params := oai.ChatCompletionNewParams{Model: "synthetic", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hello there")},
		StreamOptions: oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}}
	go func() {
		for i := 0; i < 3; i++ {
			select {
			case gate <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	stream := sdk.Chat.Completions.NewStreaming(ctx, params)
	var acc oai.ChatCompletionAccumulator
	contentChunks := 0
	killed := false
	var served []string // the "mycel" field of the final chunks
	for stream.Next() {
		c := stream.Current()
		acc.AddChunk(c)
		if ps := chunkProviders(t, c.RawJSON()); ps != nil {
			served = ps
		}
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			contentChunks++
		}
		if contentChunks == 3 && !killed {
			killed = true
			p1.stop()
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	text := acc.Choices[0].Message.Content
	// provider1 delivered "t0 t1 t2"; the synthetic backend does not continue a prefix, so
	// provider2's part restarts at t0: what matters here is the one unbroken stream.
	if !strings.HasPrefix(text, "t0 t1 t2") || contentChunks <= 3 {
		t.Errorf("answer %q (%d content chunks): want provider1's three tokens then provider2's", text, contentChunks)
	}
	if acc.Usage.CompletionTokens != int64(contentChunks) || acc.Usage.PromptTokens <= 0 {
		t.Errorf("usage %+v, want %d completion tokens", acc.Usage, contentChunks)
	}
	if want := []string{k1.Address, k2.Address}; !slices.Equal(served, want) {
		t.Errorf("the answer names providers %v, want both %v", served, want)
	}
	if err := gw.WaitSettled(ctx); err != nil {
		t.Fatal(err)
	}
	chs := map[string]ChannelState{}
	for _, c := range gw.Channels() {
		chs[c.Provider] = c
	}
	if len(chs) != 2 || chs[k1.Address].ID == 0 || chs[k2.Address].ID == 0 {
		t.Fatalf("channels %+v, want one to each provider", chs)
	}
	// Both channels exist on the ledger, funded by the gateway.
	for _, c := range chs {
		var lc ledger.Channel
		if err := client.Query(ctx, "channel/"+itoa(c.ID), nil, &lc); err != nil {
			t.Fatal(err)
		}
		if lc.Consumer != gwKey.Address || lc.Deposit < c.Owed {
			t.Errorf("ledger channel %+v does not match the gateway's %+v", lc, c)
		}
	}
	list, _ := ks.List()
	var spent uint64
	for _, k := range list {
		if k.ID == key.ID {
			spent = k.SpentUmyc
		}
	}
	if want := chs[k1.Address].Owed + chs[k2.Address].Owed; spent != want || spent == 0 {
		t.Errorf("key spend %d, want the sum owed to the providers %d", spent, want)
	}
	if _, n := rl.Root(0); n != 1 {
		t.Errorf("receipt log holds %d receipts, want provider2's one", n)
	}

	// 2. With provider1 gone, a non-streaming request is retried on provider2 before the
	// first byte and paid with a voucher covering everything provider2 delivered before.
	var plainResp *http.Response
	got, err := sdk.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "synthetic", Messages: params.Messages, MaxTokens: oai.Int(4)},
		option.WithResponseInto(&plainResp))
	if err != nil {
		t.Fatal(err)
	}
	if got.Choices[0].Message.Content != "t0 t1 t2 t3" || got.Usage.CompletionTokens != 4 {
		t.Errorf("answer %q usage %+v, want t0…t3 with 4 tokens", got.Choices[0].Message.Content, got.Usage)
	}
	if err := gw.WaitSettled(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := rl.Root(0); n != 2 {
		t.Errorf("receipt log holds %d receipts, want 2", n)
	}

	// 3. The request's record: the body provider2 signed for (seeded by the gateway), and the
	// reveal fetched through the gateway matches the receipt's logprobs commitment.
	getJSON := func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	reqID := plainResp.Header.Get(HeaderRequestID)
	var rec gwapi.Record
	getJSON(gwapi.RecordPath(reqID), &rec)
	if len(rec.Attempts) != 1 || rec.Attempts[0].Provider != k2.Address {
		t.Fatalf("record %+v, want one attempt by provider2", rec)
	}
	at := rec.Attempts[0]
	bodySum := sha256.Sum256([]byte(at.Body))
	if err := at.Receipt.Verify(k2.PubKey()); err != nil || at.Receipt.RequestHash != hex.EncodeToString(bodySum[:]) || at.Receipt.RequestID != at.ProviderRequestID {
		t.Errorf("record's receipt (err %v) does not bind the body sent as %s", err, at.ProviderRequestID)
	}
	if !strings.Contains(at.Body, `"seed":`) {
		t.Errorf("upstream body %s without the gateway's seed", at.Body)
	}
	var rv reveal.Response
	getJSON(gwapi.RevealPath(reqID, 0), &rv)
	if len(rv.IDs) != 4 || channel.LogprobsCommitment(rv.IDs, rv.Float32s()) != at.Receipt.LogprobsCommitment {
		t.Errorf("reveal %+v does not open the receipt's logprobs commitment %s", rv, at.Receipt.LogprobsCommitment)
	}
}

func itoa(v uint64) string { return strconvFormat(v) }
