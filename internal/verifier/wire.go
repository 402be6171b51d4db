package verifier

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
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

	"github.com/mycel-network/mycel/internal/address"
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

// Submit implements Chain: a transaction the ledger refused (check or
// deliver code) is marked ErrRefused.
func (c LedgerChain) Submit(ctx context.Context, msgs ...any) error {
	_, err := c.Client.Submit(ctx, c.Key, msgs...)
	if te := (*chainclient.TxError)(nil); errors.As(err, &te) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

// ShopperKey derives the key of a single shopper account from the
// verifier's key: an ordinary consumer account, not the registered verifier
// address. HTTPShopper pays from EpochShopperKey's accounts instead, one per
// epoch.
func ShopperKey(k keys.Key) keys.Key {
	h := sha256.New()
	h.Write([]byte("mycel/shopper-key/v1\x00"))
	h.Write(k.PrivKey.Seed())
	priv := ed25519.NewKeyFromSeed(h.Sum(nil))
	return keys.Key{Name: k.Name + "-shopper", Address: address.FromPubKey(priv.Public().(ed25519.PublicKey)), PrivKey: priv}
}

// EpochShopperKey derives the key of the shopper account of epoch e from
// the verifier's key: a fresh ordinary consumer account every epoch, so the
// shopper receipts a verifier reports after an epoch (which name the
// channels that paid) say nothing about the next epoch's shoppers.
func EpochShopperKey(k keys.Key, e uint64) keys.Key {
	h := sha256.New()
	h.Write([]byte("mycel/shopper-key/v2\x00"))
	h.Write(k.PrivKey.Seed())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], e)
	h.Write(b[:])
	priv := ed25519.NewKeyFromSeed(h.Sum(nil))
	return keys.Key{Name: fmt.Sprintf("%s-shopper-%d", k.Name, e), Address: address.FromPubKey(priv.Public().(ed25519.PublicKey)), PrivKey: priv}
}

// ShopperLedger is what HTTPShopper needs of the ledger.
type ShopperLedger interface {
	Epoch(ctx context.Context) (ledger.EpochView, error)
	Balance(ctx context.Context, addr string) (uint64, error)
	// Channels lists the channels of a consumer.
	Channels(ctx context.Context, consumer string) ([]ledger.Channel, error)
	MinFee(ctx context.Context) (uint64, error)
	// Submit signs msgs with key and submits them in one transaction.
	Submit(ctx context.Context, key keys.Key, msgs ...any) error
}

// clientLedger is ShopperLedger over chainclient.
type clientLedger struct{ c *chainclient.Client }

// PubKey implements AccountKeys.
func (l clientLedger) PubKey(ctx context.Context, addr string) (ed25519.PublicKey, error) {
	if l.c == nil {
		return nil, errors.New("no ledger client")
	}
	a, err := l.c.Account(ctx, addr)
	if err != nil {
		return nil, err
	}
	if len(a.PubKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("account %s has no public key on the ledger", addr)
	}
	return ed25519.PublicKey(a.PubKey), nil
}

func (l clientLedger) Epoch(ctx context.Context) (ledger.EpochView, error) {
	var e ledger.EpochView
	return e, l.c.Query(ctx, "epoch", nil, &e)
}

func (l clientLedger) Balance(ctx context.Context, addr string) (uint64, error) {
	a, err := l.c.Account(ctx, addr)
	return a.Balance, err
}

func (l clientLedger) Channels(ctx context.Context, consumer string) ([]ledger.Channel, error) {
	var chs []ledger.Channel
	return chs, l.c.Query(ctx, "channels", []byte(consumer), &chs)
}

func (l clientLedger) MinFee(ctx context.Context) (uint64, error) { return l.c.MinFee(ctx) }

func (l clientLedger) Submit(ctx context.Context, key keys.Key, msgs ...any) error {
	return LedgerChain{Client: l.c, Key: key}.Submit(ctx, msgs...)
}

// HTTPShopper sends shopper requests straight to providers' OpenAI API,
// paying through payment channels of a separate consumer account that the
// verifier funds, like any consumer. Unless Payer is set, the account is
// fresh every epoch (EpochShopperKey); once an epoch is over its account
// closes its channels and, when they have settled, sends what is left back
// to the verifier (see sweep). Streaming and logprobs follow the drawn
// parameters.
type HTTPShopper struct {
	Chain   LedgerChain // the verifier's account: funds the payer
	Payer   *keys.Key   // a fixed paying consumer account; nil: EpochShopperKey(Chain.Key, epoch)
	Ledger  ShopperLedger
	ChainID string
	Deposit uint64 // umyc locked per channel
	HTTP    *http.Client
	Models  *ModelDir // for token ids from logprobs bytes
	Logger  *slog.Logger

	mu       sync.Mutex
	channels map[string]*shopChannel // by epoch/provider
	pending  map[uint64]bool         // past epochs whose account is not swept yet
	looked   bool                    // the accounts of the last epochs before this run were queued
}

type shopChannel struct {
	id        uint64
	delivered uint64 // provider's cumulative from its last receipt
	endpoint  string // the provider's, for the final voucher
}

func (s *HTTPShopper) ledger() ShopperLedger {
	if s.Ledger != nil {
		return s.Ledger
	}
	return clientLedger{s.Chain.Client}
}

// payer returns the paying account of the current epoch (Payer if set) and
// the epoch.
func (s *HTTPShopper) payer(ctx context.Context) (keys.Key, uint64, error) {
	if s.Payer != nil {
		return *s.Payer, 0, nil
	}
	ep, err := s.ledger().Epoch(ctx)
	if err != nil {
		return keys.Key{}, 0, fmt.Errorf("shopper account: %w", err)
	}
	return EpochShopperKey(s.Chain.Key, ep.Number), ep.Number, nil
}

// sweepLookback is how many epochs back a starting shopper looks for
// accounts a previous run left unswept.
const sweepLookback = 3

// Shop implements Shopper.
func (s *HTTPShopper) Shop(ctx context.Context, p ledger.ProviderView, model string, params ShopperParams) (Shopped, error) {
	payer, e, err := s.payer(ctx)
	if err != nil {
		return Shopped{}, err
	}
	if s.Payer == nil {
		s.sweep(ctx, e)
	}
	ch, err := s.channel(ctx, payer, e, p)
	if err != nil {
		return Shopped{}, err
	}
	sys, user := PoolPrompt(params.PoolIndex)
	body := RequestBody(model, params, sys, user)
	voucher := channel.SignVoucher(s.ChainID, ch.id, ch.delivered, payer.PrivKey)
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
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return Shopped{}, fmt.Errorf("shop: provider answered %s: %.200s", resp.Status, raw)
	}
	var (
		rc      channel.Receipt
		text    string
		finish  string
		entries []LogprobEntry
		logp    bool
	)
	if params.Stream {
		text, finish, entries, logp, rc, err = readStream(io.LimitReader(resp.Body, 8<<20))
	} else {
		text, finish, entries, logp, rc, err = readCompletion(resp)
	}
	dur := time.Since(start)
	if err != nil {
		return Shopped{}, fmt.Errorf("shop: %w", err)
	}
	ans := Answer{Text: text, FinishReason: finish}
	if logp {
		ids, lps, err := s.Models.IDsFromBytes(rc.ModelSHA256, entries)
		if err != nil {
			return Shopped{}, fmt.Errorf("shop: %w", err)
		}
		ans.IDs, ans.Logprobs = ids, lps
	} else {
		// An answer without logprobs carries no token ids: ask for the ones behind the
		// receipt's commitment, as the paying consumer, so the exact checks run (see
		// Answer.Revealed). A refusal or unsigned values that do not hash to the commitment
		// leave no logprobs with Revealed set: the re-check runs on the text's tokenisation
		// and logprobs_reveal fails. Values the provider signed are kept with the signature
		// (Answer.RevealSignature) whether they match or not: logprobs_reveal fails on a
		// mismatch, and the evidence material proves it. Answers with logprobs already carry
		// ids and values.
		ans.Revealed = true
		r, err := s.fetchReveal(ctx, p.Endpoint, p.Address, hex.EncodeToString(rid[:]), rc.LogprobsCommitment, payer.PrivKey)
		if err != nil {
			s.logger().Info("provider did not reveal its committed logprobs", "provider", p.Address, "err", err)
		}
		ans.useReveal(r, err)
	}
	s.mu.Lock()
	if rc.Cumulative > ch.delivered {
		ch.delivered = rc.Cumulative
	}
	s.mu.Unlock()
	return Shopped{Body: body, System: sys, User: user, Params: params, Answer: ans, Receipt: rc, Duration: dur}, nil
}

// readCompletion reads a non-streamed chat completion and its receipt
// header.
func readCompletion(resp *http.Response) (text, finish string, lps []LogprobEntry, haveLP bool, rc channel.Receipt, err error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return "", "", nil, false, rc, err
	}
	if rc, err = channel.DecodeReceiptHeader(resp.Header.Get("X-Mycel-Receipt")); err != nil {
		return "", "", nil, false, rc, err
	}
	text, finish, lps, haveLP, err = parseCompletion(raw)
	return text, finish, lps, haveLP, rc, err
}

// parseCompletion reads a non-streamed chat completion body.
func parseCompletion(raw []byte) (text, finish string, lps []LogprobEntry, haveLP bool, err error) {
	var out chatResponse
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Choices) == 0 {
		return "", "", nil, false, fmt.Errorf("bad completion body: %v", err)
	}
	c := out.Choices[0]
	if c.Logprobs != nil {
		lps, haveLP = c.Logprobs.Content, true
	}
	return c.Message.Content, c.FinishReason, lps, haveLP, nil
}

// readStream reads a streamed chat completion (server-sent events): the
// content deltas and logprobs of every chunk, the finish reason, and the
// receipt event the provider sends before [DONE].
func readStream(r io.Reader) (text, finish string, lps []LogprobEntry, haveLP bool, rc channel.Receipt, err error) {
	text, finish, lps, haveLP, got, err := scanStream(r)
	if err != nil {
		return "", "", nil, false, rc, err
	}
	if got == nil {
		return "", "", nil, false, rc, errors.New("stream ended without a receipt")
	}
	return text, finish, lps, haveLP, *got, nil
}

// scanStream reads a streamed chat completion as readStream does; the
// receipt event is nil when the stream had none (a gateway's, to its
// clients).
func scanStream(r io.Reader) (text, finish string, lps []LogprobEntry, haveLP bool, rc *channel.Receipt, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var b strings.Builder
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			break
		}
		var ev struct {
			Object  string           `json:"object"`
			Receipt *channel.Receipt `json:"receipt"`
			Error   *struct {
				Message string `json:"message"`
			} `json:"error"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
				Logprobs     *struct {
					Content []LogprobEntry `json:"content"`
				} `json:"logprobs"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return "", "", nil, false, nil, fmt.Errorf("stream event: %w", err)
		}
		switch {
		case ev.Object == channel.ReceiptEventObject && ev.Receipt != nil:
			rc = ev.Receipt
		case ev.Error != nil:
			return "", "", nil, false, nil, fmt.Errorf("stream error: %s", ev.Error.Message)
		}
		for _, c := range ev.Choices {
			b.WriteString(c.Delta.Content)
			if c.Logprobs != nil {
				lps, haveLP = append(lps, c.Logprobs.Content...), true
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", nil, false, nil, fmt.Errorf("stream: %w", err)
	}
	return b.String(), finish, lps, haveLP, rc, nil
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

func (s *HTTPShopper) channel(ctx context.Context, payer keys.Key, e uint64, p ledger.ProviderView) (*shopChannel, error) {
	provider := p.Address
	key := fmt.Sprintf("%d/%s", e, provider)
	s.mu.Lock()
	if s.channels == nil {
		s.channels = map[string]*shopChannel{}
	}
	ch := s.channels[key]
	s.mu.Unlock()
	if ch != nil {
		return ch, nil
	}
	l := s.ledger()
	find := func() (*ledger.Channel, error) {
		chs, err := l.Channels(ctx, payer.Address)
		if err != nil {
			return nil, err
		}
		for i := range chs {
			if chs[i].Provider == provider && chs[i].Consumer == payer.Address && chs[i].Deposit > chs[i].Redeemed &&
				chs[i].CloseAt == 0 && !chs[i].Closed {
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
		if err := s.fund(ctx, payer.Address); err != nil {
			return nil, err
		}
		if err := l.Submit(ctx, payer, tx.OpenChannel{Provider: provider, Deposit: s.Deposit}); err != nil {
			return nil, fmt.Errorf("open channel: %w", err)
		}
		if c, err = find(); err != nil || c == nil {
			return nil, fmt.Errorf("open channel: not found after opening (%v)", err)
		}
	}
	ch = &shopChannel{id: c.ID, delivered: c.Redeemed, endpoint: p.Endpoint}
	s.mu.Lock()
	s.channels[key] = ch
	if s.Payer == nil {
		if s.pending == nil {
			s.pending = map[uint64]bool{}
		}
		s.pending[e] = true
	}
	s.mu.Unlock()
	return ch, nil
}

// feeRoom is what a shopper account keeps for its transaction fees (umyc).
const feeRoom = 1_000_000

// fund tops the payer's balance up from the verifier's account so it can
// open a channel: to four deposits when it holds less than one (plus fees).
func (s *HTTPShopper) fund(ctx context.Context, addr string) error {
	l := s.ledger()
	bal, err := l.Balance(ctx, addr)
	if err != nil {
		return fmt.Errorf("fund shopper account: %w", err)
	}
	if bal >= s.Deposit+feeRoom {
		return nil
	}
	if err := l.Submit(ctx, s.Chain.Key, tx.Send{To: addr, Amount: 4*s.Deposit + feeRoom - bal}); err != nil {
		return fmt.Errorf("fund shopper account %s: %w", addr, err)
	}
	return nil
}

// sweep returns what the shopper accounts of epochs before e hold to the
// verifier, one step per call (Shop calls it): it closes the account's open
// channels (the provider redeems its last voucher within the ledger's
// challenge window; the rest of each deposit returns to the account), and
// once every channel has closed it sends the account's balance, less the
// fee, to the verifier. Leaving the money would lose a channel deposit per
// provider and epoch; the sweep's Send shows the account was this
// verifier's, which its funding Send showed already, and only once the
// account is out of use. Failures are logged and retried on the next call.
func (s *HTTPShopper) sweep(ctx context.Context, e uint64) {
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[uint64]bool{}
	}
	if !s.looked {
		// Accounts a previous run may have left (its pending set was in
		// memory): checking an empty one costs two queries.
		s.looked = true
		for back := uint64(1); back <= sweepLookback && back <= e; back++ {
			s.pending[e-back] = true
		}
	}
	var eps []uint64
	for pe := range s.pending {
		if pe < e {
			eps = append(eps, pe)
		}
	}
	s.mu.Unlock()
	for _, pe := range eps {
		done, err := s.sweepEpoch(ctx, pe)
		if err != nil {
			s.logger().Warn("sweep shopper account", "epoch", pe, "err", err)
			continue
		}
		if done {
			s.mu.Lock()
			delete(s.pending, pe)
			s.mu.Unlock()
		}
	}
}

// postVoucher sends a voucher without a request (the provider's settling
// endpoint).
func (s *HTTPShopper) postVoucher(ctx context.Context, endpoint string, v channel.Voucher) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+"/mycel/v1/voucher", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := s.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("provider answered %s", resp.Status)
	}
	return nil
}

func (s *HTTPShopper) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// sweepEpoch does one step of sweeping epoch pe's account; done reports that
// nothing is left to do.
func (s *HTTPShopper) sweepEpoch(ctx context.Context, pe uint64) (done bool, err error) {
	l := s.ledger()
	k := EpochShopperKey(s.Chain.Key, pe)
	chs, err := l.Channels(ctx, k.Address)
	if err != nil {
		return false, err
	}
	// Pay the last answers first: a request's voucher covers the ones
	// before it, so the final amount goes to the provider on its own, as a
	// gateway settles before closing.
	prefix := fmt.Sprintf("%d/", pe)
	s.mu.Lock()
	var final []*shopChannel
	for key, ch := range s.channels {
		if strings.HasPrefix(key, prefix) {
			final = append(final, ch)
			delete(s.channels, key)
		}
	}
	s.mu.Unlock()
	for _, ch := range final {
		if ch.delivered == 0 {
			continue
		}
		if err := s.postVoucher(ctx, ch.endpoint, channel.SignVoucher(s.ChainID, ch.id, ch.delivered, k.PrivKey)); err != nil {
			// The provider may still claim it from its receipts within
			// the challenge window.
			s.logger().Warn("final shopper voucher", "channel_id", ch.id, "err", err)
		}
	}
	var closeMsgs []any
	open := false
	for _, c := range chs {
		if c.Consumer != k.Address || c.Closed {
			continue
		}
		open = true
		if c.CloseAt == 0 {
			closeMsgs = append(closeMsgs, tx.CloseChannel{ChannelID: c.ID})
		}
	}
	if len(closeMsgs) > 0 {
		if err := l.Submit(ctx, k, closeMsgs...); err != nil {
			return false, fmt.Errorf("close the channels of %s: %w", k.Address, err)
		}
		s.logger().Info("closing the channels of a past shopper account", "epoch", pe, "channels", len(closeMsgs))
	}
	if open {
		return false, nil // settles after the challenge window
	}
	bal, err := l.Balance(ctx, k.Address)
	if err != nil {
		return false, err
	}
	fee, err := l.MinFee(ctx)
	if err != nil {
		return false, err
	}
	if bal <= fee {
		return true, nil
	}
	if err := l.Submit(ctx, k, tx.Send{To: s.Chain.Key.Address, Amount: bal - fee}); err != nil {
		return false, fmt.Errorf("return %dumyc from %s: %w", bal-fee, k.Address, err)
	}
	s.logger().Info("past shopper account swept back", "epoch", pe, "amount", bal-fee)
	return true, nil
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
