package provider

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/demomodel"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tx"
)

// The demo models are generated once per test binary into a temporary directory.
var (
	demoOnce sync.Once
	demoDir  string
	demoOut  map[string]demomodel.Generated
	demoErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if demoDir != "" {
		os.RemoveAll(demoDir)
	}
	os.Exit(code)
}

func demoModels(t *testing.T) map[string]demomodel.Generated {
	t.Helper()
	demoOnce.Do(func() {
		demoDir, demoErr = os.MkdirTemp("", "provider-demo")
		if demoErr != nil {
			return
		}
		var gs []demomodel.Generated
		gs, demoErr = demomodel.Generate(context.Background(), demoDir, nil)
		demoOut = map[string]demomodel.Generated{}
		for _, g := range gs {
			demoOut[g.Name] = g
		}
	})
	if demoErr != nil {
		t.Fatalf("generate demo models: %v", demoErr)
	}
	return demoOut
}

// TestDevnetEndToEnd runs a provider with the built-in engine on a demo model against an
// in-process chain: registration, a consumer's channel, paid streaming and non-streaming
// requests with verified receipts and logprob commitments, refused bad vouchers, and
// redemption at shutdown credited on the ledger.
func TestDevnetEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and a model; skipped with -short")
	}
	if raceEnabled {
		t.Skip("model generation and the engine take minutes under -race; the synthetic-backend tests cover the provider's concurrency")
	}
	ref := demoModels(t)["mycel-ref"]
	d, err := devnet.New(devnet.Config{Dir: t.TempDir(), Genesis: func(g *ledger.Genesis) error {
		g.Models = append(g.Models, tx.RegisterModel{ID: "mycel-ref", SHA256: ref.SHA256, Architecture: "qwen2", Parameters: 1_000_000, Quantization: "F32", ContextLength: 2048})
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chainDone := make(chan error, 1)
	chainCtx, stopChain := context.WithCancel(ctx)
	go func() { chainDone <- d.Run(chainCtx) }()
	defer func() { stopChain(); <-chainDone }()
	if err := d.WaitHeight(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	client, err := d.Client(0, chainclient.WithCommitTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	provKey, _ := d.Key("provider1")
	alice, _ := d.Key("alice")

	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.CreditUmyc = 50_000
	cfg.ChannelPoll = 100 * time.Millisecond
	m := DefaultModel()
	m.ID, m.GGUF, m.Threads, m.ContextLength = "mycel-ref", ref.Path, 1, 512
	m.PriceInPerMTok, m.PriceOutPerMTok = 1_000_000, 2_000_000
	cfg.Models = []ModelConfig{m}
	backends, closeAll, err := OpenBackends(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	store, err := OpenStore(cfg.DataDir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hw := tx.Hardware{CPU: "test cpu", Cores: 2, RAMBytes: 1 << 30}
	p, err := New(cfg, Deps{Chain: ClientChain{C: client, S: client.NewSender(provKey)}, Address: provKey.Address, PrivKey: provKey.PrivKey,
		Backends: backends, Store: store, Registerer: prometheus.NewRegistry(), Hardware: &hw})
	if err != nil {
		t.Fatal(err)
	}
	provCtx, stopProv := context.WithCancel(ctx)
	provDone := make(chan error, 1)
	go func() { provDone <- p.Run(provCtx) }()
	select {
	case <-p.Ready():
	case err := <-provDone:
		t.Fatalf("provider stopped: %v", err)
	}

	// Registered with endpoint, hardware and prices.
	var pv ledger.ProviderView
	if err := client.Query(ctx, "provider/"+provKey.Address, nil, &pv); err != nil {
		t.Fatal(err)
	}
	if pv.Endpoint != p.URL() || pv.Hardware.CPU != "test cpu" || len(pv.Models) != 1 || pv.Models[0].PriceOutPerMTok != 2_000_000 || !pv.Active {
		t.Errorf("registered provider %+v", pv)
	}

	// Alice opens a channel.
	res, err := client.NewSender(alice).Submit(ctx, tx.OpenChannel{Provider: provKey.Address, Deposit: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	var chID uint64
	for _, ev := range res.Events {
		for _, a := range ev.Attrs {
			if ev.Type == "open_channel" && a.Key == "channel_id" {
				chID, _ = strconv.ParseUint(a.Value, 10, 64)
			}
		}
	}
	if chID == 0 {
		t.Fatalf("no channel id in %+v", res.Events)
	}
	chainID := d.ChainID()
	voucher := func(amount uint64) string {
		s, _ := channel.EncodeHeader(channel.SignVoucher(chainID, chID, amount, alice.PrivKey))
		return s
	}
	post := func(path, body, v string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL()+path, strings.NewReader(body))
		req.Header.Set(channel.HeaderVoucher, v)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	provPub := provKey.PrivKey.Public().(ed25519.PublicKey)
	vocab := backend.ByteVocab(backends["mycel-ref"].Info().Tokenizer)

	// Non-streaming chat, greedy, with logprobs: the receipt commits to them.
	chatReq := `{"model":"mycel-ref","messages":[{"role":"user","content":"What does a Go channel do?"}],"max_tokens":8,"temperature":0,"logprobs":true,"top_logprobs":2}`
	resp := post("/v1/chat/completions", chatReq, voucher(0))
	var cc openai.ChatCompletion
	if err := json.NewDecoder(resp.Body).Decode(&cc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("chat: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	rc, err := channel.DecodeReceiptHeader(resp.Header.Get(channel.HeaderReceipt))
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Verify(provPub); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	var ids []int32
	var lps []float32
	for _, tl := range cc.Choices[0].Logprobs.Content {
		raw := make([]byte, len(tl.Bytes))
		for i, b := range tl.Bytes {
			raw[i] = byte(b)
		}
		id, ok := vocab[string(raw)]
		if !ok {
			t.Fatalf("token %q not in the vocabulary", tl.Token)
		}
		ids, lps = append(ids, id), append(lps, float32(tl.Logprob))
		if len(tl.TopLogprobs) != 2 || tl.TopLogprobs[0].Logprob < tl.Logprob-1e-6 && tl.TopLogprobs[0].Token == tl.Token {
			t.Errorf("top logprobs %+v", tl.TopLogprobs)
		}
	}
	if rc.ModelSHA256 != ref.SHA256 || rc.ChainID != chainID || rc.Consumer != alice.Address || rc.TokensIn != uint64(cc.Usage.PromptTokens) ||
		rc.TokensOut != uint64(len(ids)) || rc.OutputHash != sum(cc.Choices[0].Message.Content) || rc.RequestHash != sum(chatReq) ||
		rc.LogprobsCommitment != channel.LogprobsCommitment(ids, lps) {
		t.Errorf("receipt %+v does not match the answer %+v", rc, cc)
	}
	// The engine is deterministic: the same greedy request gives the same commitment.
	resp = post("/v1/chat/completions", chatReq, voucher(rc.Cumulative))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rc2, err := channel.DecodeReceiptHeader(resp.Header.Get(channel.HeaderReceipt))
	if err != nil || rc2.LogprobsCommitment != rc.LogprobsCommitment || rc2.OutputHash != rc.OutputHash || rc2.Cumulative != rc.Cumulative+rc2.Cost {
		t.Errorf("repeat: %+v (%v); first %+v", rc2, err, rc)
	}

	// Streaming completion.
	resp = post("/v1/completions", `{"model":"mycel-ref","prompt":"func main() {","max_tokens":6,"temperature":0,"stream":true}`, voucher(rc2.Cumulative))
	evs, done := readStream(t, resp.Body)
	resp.Body.Close()
	if !done || len(evs) < 2 {
		t.Fatalf("stream: done %v, %d events", done, len(evs))
	}
	var re channel.ReceiptEvent
	if err := json.Unmarshal(evs[len(evs)-1], &re); err != nil || re.Object != channel.ReceiptEventObject || re.Receipt.Verify(provPub) != nil {
		t.Fatalf("receipt event %s: %v", evs[len(evs)-1], err)
	}
	delivered := re.Receipt.Cumulative
	if delivered != rc2.Cumulative+re.Receipt.Cost {
		t.Errorf("cumulative %d, want %d", delivered, rc2.Cumulative+re.Receipt.Cost)
	}

	// Bad vouchers: another chain, stale.
	other, _ := channel.EncodeHeader(channel.SignVoucher("other-chain", chID, delivered, alice.PrivKey))
	for name, v := range map[string]string{"other chain": other, "stale": voucher(0)} {
		resp := post("/v1/chat/completions", chatReq, v)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPaymentRequired {
			t.Errorf("%s voucher: %d, want 402", name, resp.StatusCode)
		}
	}

	// Alice settles; the provider redeems at shutdown.
	before, err := client.Account(ctx, provKey.Address)
	if err != nil {
		t.Fatal(err)
	}
	vresp, err := http.Post(p.URL()+"/mycel/v1/voucher", "application/json", strings.NewReader(mustJSON(channel.SignVoucher(chainID, chID, delivered, alice.PrivKey))))
	if err != nil || vresp.StatusCode != 200 {
		t.Fatalf("settle voucher: %v %v", vresp.StatusCode, err)
	}
	vresp.Body.Close()
	stopProv()
	if err := <-provDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("provider Run: %v", err)
	}
	var ch ledger.Channel
	if err := client.Query(ctx, "channel/"+strconv.FormatUint(chID, 10), nil, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Redeemed != delivered {
		t.Errorf("ledger channel redeemed %d, want %d delivered", ch.Redeemed, delivered)
	}
	after, _ := client.Account(ctx, provKey.Address)
	fee, _ := client.MinFee(ctx)
	if after.Balance != before.Balance+delivered-fee {
		t.Errorf("provider balance %d → %d, want +%d−fee %d", before.Balance, after.Balance, delivered, fee)
	}
}
