package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrKVBudget is returned for a request whose prompt plus maximum output
// cannot fit the engine's KV cache budget even when nothing else runs.
var ErrKVBudget = errors.New("request does not fit the KV cache budget")

// ErrStopped is returned by Generate when the engine's Run has returned.
var ErrStopped = errors.New("engine stopped")

// Config configures an Engine.
type Config struct {
	// Threads is the number of goroutines a forward pass uses; 0 means
	// runtime.NumCPU().
	Threads int
	// KVBudgetBytes bounds the memory of all sequences' KV caches (float32
	// keys and values); 0 means 1 GiB.
	KVBudgetBytes int64
	// MaxBatch is the most sequences decoded together; 0 means 16.
	MaxBatch int
	// PrefillChunk is the most prompt tokens one forward pass takes; 0
	// means 128. It changes speed only, never results.
	PrefillChunk int
	// Logger receives scheduler diagnostics; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Threads <= 0 {
		c.Threads = runtime.NumCPU()
	}
	if c.KVBudgetBytes <= 0 {
		c.KVBudgetBytes = 1 << 30
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 16
	}
	if c.PrefillChunk <= 0 {
		c.PrefillChunk = 128
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Request is one generation request.
type Request struct {
	Prompt []int32
	// MaxTokens bounds the output; 0 means up to the context length or as
	// much as the KV budget holds, whichever is less.
	MaxTokens int
	Sampling  Sampling
	// Stop ends generation when the decoded output contains one of these
	// strings; the stop string and what follows are not returned.
	Stop []string
	// TopLogprobs is how many most likely alternatives to report per token
	// (at most 100).
	TopLogprobs int
	// IgnoreEOG keeps generating past end-of-generation tokens (benchmarks).
	IgnoreEOG bool
}

// Token is one generated token as streamed to the callback.
type Token struct {
	// ID is the token id; -1 marks the final flush of text held back at the
	// end of generation (no logprob).
	ID int32 `json:"id"`
	// Text is the text this token releases; it may be "" while text is held
	// back (a possible stop-sequence prefix or an incomplete UTF-8
	// character) and may include text held back from earlier tokens.
	Text string `json:"text"`
	// Logprob is the log-softmax of the raw logits at the chosen token.
	Logprob float32      `json:"logprob"`
	Top     []TopLogprob `json:"top,omitempty"`
}

// Finish reasons.
const (
	FinishStop   = "stop"
	FinishLength = "length"
	FinishCancel = "cancel"
)

// Result summarises a finished generation.
type Result struct {
	Tokens           []Token // generated tokens (without the flush marker)
	Text             string
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
	// Queued is the time before the scheduler admitted the request, Prefill
	// the time from admission to the first token, Decode the rest.
	Queued, Prefill, Decode time.Duration
}

// TokenScore is a scored output token.
type TokenScore struct {
	ID      int32        `json:"id"`
	Logprob float32      `json:"logprob"`
	Top     []TopLogprob `json:"top,omitempty"`
}

// Engine schedules generation requests over one model with continuous
// batching. Run must be running for Generate to make progress.
type Engine struct {
	m      *Model
	cfg    Config
	pool   pool
	submit chan *seq
	done   chan struct{}
	budget *budget
	runs   atomic.Int32
}

// New returns an engine for m.
func New(m *Model, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	return &Engine{
		m:      m,
		cfg:    cfg,
		pool:   pool{threads: cfg.Threads},
		submit: make(chan *seq),
		done:   make(chan struct{}),
		budget: newBudget(cfg.KVBudgetBytes),
	}
}

// Model returns the engine's model.
func (e *Engine) Model() *Model { return e.m }

// budget is the KV cache byte budget shared by generation and scoring.
type budget struct {
	mu      sync.Mutex
	total   int64
	used    int64
	changed chan struct{} // closed and replaced on every release
}

func newBudget(total int64) *budget {
	return &budget{total: total, changed: make(chan struct{})}
}

func (b *budget) tryAcquire(n int64) (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n <= b.total {
		b.used += n
		return true, nil
	}
	return false, b.changed
}

func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		ok, ch := b.tryAcquire(n)
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// seq is one sequence owned by the scheduler.
type seq struct {
	req       Request
	maxTokens int
	kvBytes   int64
	kv        *kvCache
	prefilled int     // prompt tokens in the cache
	history   []int32 // prompt then generated tokens
	generated int
	finished  bool // the scheduler has sent the last event
	sampler   sampler
	submitted time.Time
	// Events go from the scheduler to Generate through an unbounded queue,
	// so the scheduler never blocks on a slow consumer; notify (capacity
	// one) signals that the queue is not empty.
	mu     sync.Mutex
	queue  []seqEvent
	notify chan struct{}
	// cancelled is set by Generate (callback error, stop string, ctx).
	cancelled atomic.Bool
}

// send queues ev for Generate.
func (s *seq) send(ev seqEvent) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// take returns the queued events.
func (s *seq) take(buf []seqEvent) []seqEvent {
	s.mu.Lock()
	buf = append(buf[:0], s.queue...)
	s.queue = s.queue[:0]
	s.mu.Unlock()
	return buf
}

type seqEvent struct {
	tok      Token
	admitted time.Time
	last     bool   // no more events follow
	finish   string // with last
	err      error  // with last
}

func (e *Engine) validate(prompt []int32) error {
	if len(prompt) == 0 {
		return errors.New("empty prompt")
	}
	for i, id := range prompt {
		if id < 0 || int(id) >= e.m.hp.nVocab {
			return fmt.Errorf("prompt token %d: id %d outside vocabulary of %d", i, id, e.m.hp.nVocab)
		}
	}
	return nil
}

// Generate runs req through the scheduler, calling fn for every token (in
// the caller's goroutine). An error from fn stops generation and is
// returned. Cancelling ctx stops generation within one token; the result
// then has FinishReason "cancel" and the error is ctx.Err().
func (e *Engine) Generate(ctx context.Context, req Request, fn func(Token) error) (Result, error) {
	if err := e.validate(req.Prompt); err != nil {
		return Result{}, fmt.Errorf("generate: %w", err)
	}
	nCtx := e.m.hp.nCtx
	if len(req.Prompt) >= nCtx {
		return Result{}, fmt.Errorf("generate: prompt of %d tokens does not fit the context of %d", len(req.Prompt), nCtx)
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > 100 {
		return Result{}, fmt.Errorf("generate: top logprobs %d out of range [0, 100]", req.TopLogprobs)
	}
	if req.MaxTokens < 0 {
		return Result{}, fmt.Errorf("generate: max tokens %d is negative", req.MaxTokens)
	}
	maxTok := nCtx - len(req.Prompt)
	if req.MaxTokens > 0 {
		maxTok = min(maxTok, req.MaxTokens)
	} else if fit := int(e.budget.total/e.m.kvBytesPerToken()) - len(req.Prompt); fit > 0 {
		// Without a limit, generate up to what the KV budget holds.
		maxTok = min(maxTok, fit)
	}
	kvBytes := int64(len(req.Prompt)+maxTok) * e.m.kvBytesPerToken()
	if kvBytes > e.budget.total {
		return Result{}, fmt.Errorf("generate: %d prompt + %d output tokens need %d bytes of KV cache, budget is %d: %w",
			len(req.Prompt), maxTok, kvBytes, e.budget.total, ErrKVBudget)
	}
	s := &seq{
		req:       req,
		maxTokens: maxTok,
		kvBytes:   kvBytes,
		history:   append(make([]int32, 0, len(req.Prompt)+maxTok), req.Prompt...),
		submitted: time.Now(),
		notify:    make(chan struct{}, 1),
	}
	res := Result{PromptTokens: len(req.Prompt)}
	select {
	case e.submit <- s:
	case <-ctx.Done():
		res.FinishReason = FinishCancel
		return res, ctx.Err()
	case <-e.done:
		return res, fmt.Errorf("generate: %w", ErrStopped)
	}
	st := stopper{stops: req.Stop}
	var text []byte
	var admitted, first time.Time
	finish := func(reason string) {
		res.FinishReason = reason
		res.Text = string(text)
		res.CompletionTokens = len(res.Tokens)
		now := time.Now()
		if !admitted.IsZero() {
			res.Queued = admitted.Sub(s.submitted)
			if !first.IsZero() {
				res.Prefill = first.Sub(admitted)
				res.Decode = now.Sub(first)
			} else {
				res.Prefill = now.Sub(admitted)
			}
		}
	}
	var evs []seqEvent
	for {
		select {
		case <-ctx.Done():
			s.cancelled.Store(true)
			finish(FinishCancel)
			return res, ctx.Err()
		case <-s.notify:
		}
		evs = s.take(evs)
		for _, ev := range evs {
			// Cancellation wins over tokens already queued.
			if ctx.Err() != nil {
				s.cancelled.Store(true)
				finish(FinishCancel)
				return res, ctx.Err()
			}
			if !ev.admitted.IsZero() {
				admitted = ev.admitted
				continue
			}
			if ev.last {
				if ev.err != nil {
					finish(FinishCancel)
					return res, fmt.Errorf("generate: %w", ev.err)
				}
				if rest := st.flush(); rest != "" {
					text = append(text, rest...)
					if err := fn(Token{ID: -1, Text: rest}); err != nil {
						finish(ev.finish)
						return res, err
					}
				}
				finish(ev.finish)
				return res, nil
			}
			if first.IsZero() {
				first = time.Now()
			}
			tok := ev.tok
			b, err := e.tokenBytes(tok.ID)
			if err != nil {
				s.cancelled.Store(true)
				finish(FinishCancel)
				return res, fmt.Errorf("generate: %w", err)
			}
			out, hit := st.push(b)
			tok.Text = out
			text = append(text, out...)
			res.Tokens = append(res.Tokens, tok)
			if err := fn(tok); err != nil {
				s.cancelled.Store(true)
				finish(FinishCancel)
				return res, err
			}
			if hit {
				s.cancelled.Store(true)
				finish(FinishStop)
				return res, nil
			}
		}
	}
}

func (e *Engine) tokenBytes(id int32) ([]byte, error) {
	if e.m.vocab == nil {
		return nil, nil
	}
	return e.m.vocab.TokenBytes(id)
}

func (e *Engine) isEOG(id int32) bool {
	return e.m.vocab != nil && e.m.vocab.IsEOG(id)
}

// Run owns the scheduler: it admits requests at token boundaries and runs
// one forward pass per step over every active sequence. It returns nil when
// ctx is cancelled; pending requests then fail with ErrStopped.
func (e *Engine) Run(ctx context.Context) error {
	if e.runs.Add(1) != 1 {
		return errors.New("engine: Run called twice")
	}
	defer close(e.done)
	var (
		active  []*seq
		pending []*seq
		sc      scratch
		toks    []fwdToken
		owners  []*seq // owners[i] is the seq of the i-th logits row
		toksOut []Token
	)
	end := func(s *seq, ev seqEvent) {
		e.cfg.Logger.Debug("sequence finished", "generated", s.generated, "finish_reason", ev.finish, "error", ev.err)
		ev.last = true
		s.send(ev)
		e.budget.release(s.kvBytes)
		s.kv = nil
		s.finished = true
	}
	defer func() {
		for _, s := range active {
			end(s, seqEvent{err: ErrStopped})
		}
		for _, s := range pending {
			s.send(seqEvent{last: true, err: ErrStopped})
		}
	}()
	for {
		// Drop sequences their callers gave up on.
		active = compact(active, func(s *seq) bool {
			if s.cancelled.Load() {
				end(s, seqEvent{finish: FinishCancel})
				return false
			}
			return true
		})
		pending = compact(pending, func(s *seq) bool {
			if s.cancelled.Load() {
				s.send(seqEvent{last: true, finish: FinishCancel})
				return false
			}
			return true
		})
		// Take new requests: block only when there is nothing to do.
		var budgetCh <-chan struct{}
		for len(pending) > 0 && len(active) < e.cfg.MaxBatch {
			ok, ch := e.budget.tryAcquire(pending[0].kvBytes)
			if !ok {
				budgetCh = ch
				break
			}
			s := pending[0]
			pending = pending[1:]
			s.kv = newKVCache(e.m, len(s.req.Prompt)+s.maxTokens)
			s.send(seqEvent{admitted: time.Now()})
			e.cfg.Logger.Debug("sequence admitted", "prompt_tokens", len(s.req.Prompt), "max_tokens", s.maxTokens,
				"kv_bytes", s.kvBytes, "active", len(active)+1, "pending", len(pending))
			active = append(active, s)
		}
		if len(active) == 0 {
			select {
			case s := <-e.submit:
				pending = append(pending, s)
			case <-budgetCh:
			case <-ctx.Done():
				return nil
			}
			continue
		}
	drain:
		for {
			select {
			case s := <-e.submit:
				pending = append(pending, s)
			default:
				break drain
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		// Build the step: one token per decoding sequence, then prompt
		// chunks up to PrefillChunk tokens.
		toks, owners = toks[:0], owners[:0]
		for _, s := range active {
			if s.prefilled == len(s.req.Prompt) {
				toks = append(toks, fwdToken{id: s.history[len(s.history)-1], pos: len(s.history) - 1, kv: s.kv, logits: true})
				owners = append(owners, s)
			}
		}
		room := e.cfg.PrefillChunk
		for _, s := range active {
			if room == 0 {
				break
			}
			n := min(room, len(s.req.Prompt)-s.prefilled)
			for i := 0; i < n; i++ {
				pos := s.prefilled + i
				last := pos == len(s.req.Prompt)-1
				toks = append(toks, fwdToken{id: s.req.Prompt[pos], pos: pos, kv: s.kv, logits: last})
				if last {
					owners = append(owners, s)
				}
			}
			room -= n
			s.prefilled += n
		}
		e.m.forward(&sc, &e.pool, toks)
		// Log-probabilities and sampling, in parallel across sequences
		// (each reads only its own logits row).
		vocab := e.m.hp.nVocab
		toksOut = append(toksOut[:0], make([]Token, len(owners))...)
		e.pool.runCost(len(owners), 8*vocab, func(_, i int) {
			s := owners[i]
			logits := sc.logits[i*vocab : (i+1)*vocab]
			lse := logSumExp(logits)
			tok := &toksOut[i]
			if s.req.TopLogprobs > 0 {
				tok.Top = topLogprobs(nil, logits, lse, s.req.TopLogprobs)
			}
			tok.ID = s.sampler.sample(logits, s.req.Sampling, s.history, uint64(s.generated))
			tok.Logprob = logprobOf(logits, lse, tok.ID)
		})
		for i, s := range owners {
			tok := toksOut[i]
			s.generated++
			if !s.req.IgnoreEOG && e.isEOG(tok.ID) {
				end(s, seqEvent{finish: FinishStop})
				continue
			}
			s.history = append(s.history, tok.ID)
			s.send(seqEvent{tok: tok})
			if s.generated >= s.maxTokens {
				end(s, seqEvent{finish: FinishLength})
			}
		}
		active = compact(active, func(s *seq) bool { return !s.finished })
	}
}

func compact(ss []*seq, keep func(*seq) bool) []*seq {
	out := ss[:0]
	for _, s := range ss {
		if keep(s) {
			out = append(out, s)
		}
	}
	clear(ss[len(out):])
	return out
}
