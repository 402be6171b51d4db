package verifier

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/peercheck"
	"github.com/mycel-network/mycel/internal/tx"
)

// This file wires the daemon to the outside: the ledger over chainclient,
// providers over HTTP with the verifier's own payment channels, and model
// files from a directory.

// LedgerChain implements Chain over chainclient.
type LedgerChain struct {
	Client *chainclient.Client
	Key    keys.Key
}

// Epoch implements Chain.
func (c LedgerChain) Epoch(ctx context.Context) (ledger.EpochView, error) {
	var e ledger.EpochView
	return e, c.Client.Query(ctx, "epoch", nil, &e)
}

// Providers implements Chain.
func (c LedgerChain) Providers(ctx context.Context) ([]ledger.ProviderView, error) {
	var ps []ledger.ProviderView
	return ps, c.Client.Query(ctx, "providers", nil, &ps)
}

// ModelSHA256 implements Chain.
func (c LedgerChain) ModelSHA256(ctx context.Context, id string) (string, error) {
	var m ledger.Model
	if err := c.Client.Query(ctx, "model/"+id, nil, &m); err != nil {
		return "", err
	}
	return m.SHA256, nil
}

// Evidence implements Chain: the evidence still open.
func (c LedgerChain) Evidence(ctx context.Context) ([]ledger.Evidence, error) {
	var evs []ledger.Evidence
	if err := c.Client.Query(ctx, "evidence", nil, &evs); err != nil {
		return nil, err
	}
	open := evs[:0]
	for _, e := range evs {
		if e.Status == ledger.EvidenceOpen {
			open = append(open, e)
		}
	}
	return open, nil
}

// Registered implements Chain.
func (c LedgerChain) Registered(ctx context.Context) (bool, error) {
	var v ledger.VerifierView
	err := c.Client.Query(ctx, "verifier/"+c.Key.Address, nil, &v)
	var qe *chainclient.QueryError
	if errors.As(err, &qe) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return v.Address != "", nil
}

// Submit implements Chain.
func (c LedgerChain) Submit(ctx context.Context, msgs ...any) error {
	_, err := c.Client.Submit(ctx, c.Key, msgs...)
	return err
}

// HTTPShopper sends shopper requests straight to providers' OpenAI API,
// paying through the verifier's own payment channel to each provider, like
// any consumer.
type HTTPShopper struct {
	Chain   LedgerChain
	ChainID string
	Deposit uint64 // umyc locked per channel
	HTTP    *http.Client
	Models  *ModelDir // for token ids from logprobs bytes
	Logger  *slog.Logger

	mu       sync.Mutex
	channels map[string]*shopChannel
}

type shopChannel struct {
	id        uint64
	delivered uint64 // provider's cumulative from its last receipt
}

// Shop implements Shopper (non-streaming requests; logprobs are what the
// params ask for).
func (s *HTTPShopper) Shop(ctx context.Context, p ledger.ProviderView, model string, params ShopperParams) (Shopped, error) {
	ch, err := s.channel(ctx, p.Address)
	if err != nil {
		return Shopped{}, err
	}
	sys, user := PoolPrompt(params.PoolIndex)
	params.Stream = false
	body := RequestBody(model, params, sys, user)
	voucher := channel.SignVoucher(s.ChainID, ch.id, ch.delivered, s.Chain.Key.PrivKey)
	vh, err := channel.EncodeHeader(voucher)
	if err != nil {
		return Shopped{}, err
	}
	var rid [12]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return Shopped{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.Endpoint, "/")+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return Shopped{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Mycel-Voucher", vh)
	req.Header.Set("X-Mycel-Request-Id", hex.EncodeToString(rid[:]))
	client := s.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return Shopped{}, fmt.Errorf("shop: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	dur := time.Since(start)
	if err != nil {
		return Shopped{}, fmt.Errorf("shop: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Shopped{}, fmt.Errorf("shop: provider answered %s: %.200s", resp.Status, raw)
	}
	rc, err := channel.DecodeReceiptHeader(resp.Header.Get("X-Mycel-Receipt"))
	if err != nil {
		return Shopped{}, fmt.Errorf("shop: %w", err)
	}
	var out chatResponse
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Choices) == 0 {
		return Shopped{}, fmt.Errorf("shop: bad completion body: %v", err)
	}
	c := out.Choices[0]
	ans := Answer{Text: c.Message.Content, FinishReason: c.FinishReason}
	if c.Logprobs != nil {
		ids, lps, err := s.Models.IDsFromBytes(rc.ModelSHA256, c.Logprobs.Content)
		if err != nil {
			return Shopped{}, fmt.Errorf("shop: %w", err)
		}
		ans.IDs, ans.Logprobs = ids, lps
	}
	s.mu.Lock()
	if rc.Cumulative > ch.delivered {
		ch.delivered = rc.Cumulative
	}
	s.mu.Unlock()
	return Shopped{Body: body, System: sys, User: user, Params: params, Answer: ans, Receipt: rc, Duration: dur}, nil
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
		Logprobs     *struct {
			Content []LogprobEntry `json:"content"`
		} `json:"logprobs"`
	} `json:"choices"`
}

// LogprobEntry is one entry of an OpenAI chat logprobs content list.
type LogprobEntry struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

func (s *HTTPShopper) channel(ctx context.Context, provider string) (*shopChannel, error) {
	s.mu.Lock()
	if s.channels == nil {
		s.channels = map[string]*shopChannel{}
	}
	ch := s.channels[provider]
	s.mu.Unlock()
	if ch != nil {
		return ch, nil
	}
	find := func() (*ledger.Channel, error) {
		var chs []ledger.Channel
		if err := s.Chain.Client.Query(ctx, "channels", []byte(s.Chain.Key.Address), &chs); err != nil {
			return nil, err
		}
		for i := range chs {
			if chs[i].Provider == provider && chs[i].Consumer == s.Chain.Key.Address && chs[i].Deposit > chs[i].Redeemed {
				return &chs[i], nil
			}
		}
		return nil, nil
	}
	c, err := find()
	if err != nil {
		return nil, fmt.Errorf("channel: %w", err)
	}
	if c == nil {
		if err := s.Chain.Submit(ctx, tx.OpenChannel{Provider: provider, Deposit: s.Deposit}); err != nil {
			return nil, fmt.Errorf("open channel: %w", err)
		}
		if c, err = find(); err != nil || c == nil {
			return nil, fmt.Errorf("open channel: not found after opening (%v)", err)
		}
	}
	ch = &shopChannel{id: c.ID, delivered: c.Redeemed}
	s.mu.Lock()
	s.channels[provider] = ch
	s.mu.Unlock()
	return ch, nil
}

// ModelDir loads the model files of a directory on demand, by hash, and
// serves Checkers.
type ModelDir struct {
	Dir     string
	Threads int
	Bands   Bands
	Logger  *slog.Logger

	mu     sync.Mutex
	index  map[string]string // sha256 -> path
	loaded map[string]*loadedModel
	start  chan *engine.Engine
	once   sync.Once
}

func (d *ModelDir) starts() chan *engine.Engine {
	d.once.Do(func() { d.start = make(chan *engine.Engine) })
	return d.start
}

type loadedModel struct {
	checker *Checker
	prompt  PromptFunc
	byBytes map[string]int32
	engine  *engine.Engine
}

// Checker implements Checkers.
func (d *ModelDir) Checker(_ context.Context, sha string) (*Checker, PromptFunc, error) {
	m, err := d.load(sha)
	if err != nil {
		return nil, nil, err
	}
	return m.checker, m.prompt, nil
}

// Run runs the engines of the models loaded (on demand, by Checker) until
// ctx is cancelled. It must be running while checkers are used.
func (d *ModelDir) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for {
		select {
		case e := <-d.starts():
			g.Go(func() error { return e.Run(ctx) })
		case <-ctx.Done():
			return g.Wait()
		}
	}
}

func (d *ModelDir) load(sha string) (*loadedModel, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.loaded[sha]; ok {
		return m, nil
	}
	if d.index == nil {
		d.index = map[string]string{}
		d.loaded = map[string]*loadedModel{}
		paths, err := filepath.Glob(filepath.Join(d.Dir, "*.gguf"))
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			h, err := fileSHA256(p)
			if err != nil {
				return nil, err
			}
			d.index[h] = p
		}
	}
	path, ok := d.index[sha]
	if !ok {
		return nil, fmt.Errorf("no model file with sha256 %s in %s", short(sha), d.Dir)
	}
	m, err := engine.Load(path, engine.LoadOptions{Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	wt, err := peercheck.WeightType(path)
	if err != nil {
		return nil, err
	}
	f, err := m.ChatFormat()
	if err != nil {
		return nil, err
	}
	tok := m.Tokenizer()
	if tok == nil {
		return nil, fmt.Errorf("model %s has no tokenizer", path)
	}
	e := engine.New(m, engine.Config{Threads: d.Threads, Logger: d.Logger})
	c, err := NewChecker(e, tok, sha, wt, d.Bands)
	if err != nil {
		return nil, err
	}
	lm := &loadedModel{checker: c, engine: e, byBytes: map[string]int32{},
		prompt: func(sys, user string) ([]int32, error) { return Prompt(f, tok, sys, user) }}
	for id := tok.VocabSize() - 1; id >= 0; id-- {
		if b, err := tok.TokenBytes(int32(id)); err == nil && len(b) > 0 {
			lm.byBytes[string(b)] = int32(id) // lowest id wins
		}
	}
	d.loaded[sha] = lm
	// Hand the engine to Run (a loaded model stays loaded).
	d.starts() <- e
	return lm, nil
}

// IDsFromBytes maps OpenAI logprobs entries to token ids by their bytes
// (the lowest id when several tokens share bytes).
func (d *ModelDir) IDsFromBytes(sha string, content []LogprobEntry) ([]int32, []float64, error) {
	m, err := d.load(sha)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]int32, len(content))
	lps := make([]float64, len(content))
	for i, e := range content {
		b := make([]byte, len(e.Bytes))
		for j, v := range e.Bytes {
			b[j] = byte(v)
		}
		if len(b) == 0 {
			b = []byte(e.Token)
		}
		id, ok := m.byBytes[string(b)]
		if !ok {
			return nil, nil, fmt.Errorf("logprobs token %d (%q) is not in the vocabulary", i, e.Token)
		}
		ids[i], lps[i] = id, e.Logprob
	}
	return ids, lps, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(f)
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
