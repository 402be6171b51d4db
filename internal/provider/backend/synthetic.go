package backend

import (
	"context"
	"strconv"
)

// Synthetic is a zero-latency backend that generates "t0 t1 t2 …" (one token per word) up to
// MaxTokens or Limit, whichever is smaller. Tests and `mycel bench provider` use it to measure
// the provider itself.
type Synthetic struct {
	// Limit is the most tokens a request generates when it sets no max_tokens (default 16).
	Limit int
	// ContextLength bounds prompt plus output (default 4096).
	ContextLength int
	// Gate, if set, is received from before each token: a test can hold generation.
	Gate <-chan struct{}
	// HealthErr, if set, is what Health returns.
	HealthErr func() error
	// OnToken, if set, is called before token i is generated (after Gate): a test can move
	// its clock there.
	OnToken func(i int)
	// Err, if set, makes Generate fail with it before the first token (a broken engine).
	Err error
	// SHA256 is the model file hash Info reports ("" for none).
	SHA256 string
}

// Info implements Backend.
func (s *Synthetic) Info() Info { return Info{ContextLength: s.ctxLen(), SHA256: s.SHA256} }

func (s *Synthetic) ctxLen() int {
	if s.ContextLength > 0 {
		return s.ContextLength
	}
	return 4096
}

// Health implements Backend.
func (s *Synthetic) Health(context.Context) error {
	if s.HealthErr != nil {
		return s.HealthErr()
	}
	return nil
}

// Prepare implements Backend: a prompt costs one token per byte/4 plus one per message.
func (s *Synthetic) Prepare(req *Request) error {
	n := 1
	if req.Chat {
		for _, m := range req.Messages {
			n += 1 + len(m.Content)/4
		}
	} else {
		n += len(req.Prompt) / 4
	}
	if req.MaxTokens <= 0 {
		req.MaxTokens = s.Limit
		if req.MaxTokens <= 0 {
			req.MaxTokens = 16
		}
	}
	return fitContext(req, n, s.ctxLen(), nil)
}

// Generate implements Backend.
func (s *Synthetic) Generate(ctx context.Context, req *Request, emit func(Chunk) error) (Result, error) {
	res := Result{PromptTokens: req.PromptTokens}
	if s.Err != nil {
		return res, s.Err
	}
	var buf [24]byte
	for i := 0; i < req.MaxTokens; i++ {
		if s.Gate != nil {
			select {
			case <-s.Gate:
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if s.OnToken != nil {
			s.OnToken(i)
		}
		b := append(buf[:0], ' ', 't')
		b = strconv.AppendInt(b, int64(i), 10)
		text := string(b)
		if i == 0 {
			text = text[1:]
		}
		c := Chunk{Text: text, N: 1, Tokens: []Token{{ID: int32(i), Text: text, Logprob: -float32(i%7) / 8}}}
		if err := emit(c); err != nil {
			return res, err
		}
		res.CompletionTokens++
	}
	res.FinishReason = "length"
	return res, nil
}
