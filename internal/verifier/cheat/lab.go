package cheat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/peercheck"
	"github.com/mycel-network/mycel/internal/tokenizer"
	"github.com/mycel-network/mycel/internal/verifier"
)

// LabModel is one model file loaded in a Lab with its engine and checker.
type LabModel struct {
	Name, Path, SHA256, WeightType string
	Model                          *engine.Model
	Engine                         *engine.Engine
	Tokenizer                      *tokenizer.Tokenizer
	Format                         chat.Format
	Checker                        *verifier.Checker
}

// Lab holds engines over model files, for serving cheaters' and honest
// answers and re-checking them in one process (tests and `mycel bench
// verify`). Run must be running while it is used.
type Lab struct {
	Models map[string]*LabModel
	order  []string
}

// LabConfig configures OpenLab.
type LabConfig struct {
	Dir     string   // directory holding NAME.gguf
	Names   []string // model names to load
	Threads int      // per engine; 0 means 1
	Bands   verifier.Bands
	Logger  *slog.Logger
}

// OpenLab loads the models. Close releases them.
func OpenLab(cfg LabConfig) (*Lab, error) {
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	l := &Lab{Models: map[string]*LabModel{}}
	for _, name := range cfg.Names {
		path := filepath.Join(cfg.Dir, name+".gguf")
		m, err := engine.Load(path, engine.LoadOptions{Logger: cfg.Logger})
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("open lab: %w", err)
		}
		lm := &LabModel{Name: name, Path: path, Model: m}
		l.Models[name] = lm
		l.order = append(l.order, name)
		if lm.SHA256, err = m.SHA256(); err != nil {
			l.Close()
			return nil, fmt.Errorf("open lab: %w", err)
		}
		if lm.WeightType, err = peercheck.WeightType(path); err != nil {
			l.Close()
			return nil, fmt.Errorf("open lab: %w", err)
		}
		if lm.Format, err = m.ChatFormat(); err != nil {
			l.Close()
			return nil, fmt.Errorf("open lab: %s: %w", name, err)
		}
		lm.Tokenizer = m.Tokenizer()
		if lm.Tokenizer == nil {
			l.Close()
			return nil, fmt.Errorf("open lab: %s has no tokenizer", name)
		}
		lm.Engine = engine.New(m, engine.Config{Threads: cfg.Threads, KVBudgetBytes: 64 << 20, Logger: cfg.Logger})
		if lm.Checker, err = verifier.NewChecker(lm.Engine, lm.Tokenizer, lm.SHA256, lm.WeightType, cfg.Bands); err != nil {
			l.Close()
			return nil, fmt.Errorf("open lab: %s: %w", name, err)
		}
	}
	return l, nil
}

// Run runs every engine until ctx is cancelled.
func (l *Lab) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, name := range l.order {
		e := l.Models[name].Engine
		g.Go(func() error { return e.Run(ctx) })
	}
	return g.Wait()
}

// Close releases the models; Run must have returned.
func (l *Lab) Close() error {
	var errs []error
	for _, m := range l.Models {
		errs = append(errs, m.Model.Close())
	}
	return errors.Join(errs...)
}

// Provider returns a provider of strategy s registered for model reg and,
// for the substituting strategies, running cheap instead.
func (l *Lab) Provider(s Strategy, reg, cheap string, seed uint64) (*Provider, error) {
	r, ok := l.Models[reg]
	if !ok {
		return nil, fmt.Errorf("lab: no model %q", reg)
	}
	p := &Provider{Strategy: s, Registered: r.Engine, ModelSHA256: r.SHA256, RandomSeed: seed, Decode: r.Tokenizer.Decode}
	if cheap != "" {
		c, ok := l.Models[cheap]
		if !ok {
			return nil, fmt.Errorf("lab: no model %q", cheap)
		}
		p.Cheap = c.Engine
	}
	return p, nil
}

// Trial is one served and re-checked request.
type Trial struct {
	Params    verifier.ShopperParams
	Served    Served
	Report    verifier.Report
	ServeTime time.Duration
	CheckTime time.Duration
}

// Request builds the request for params against registered model reg.
func (l *Lab) Request(reg string, params verifier.ShopperParams) (Request, error) {
	r, ok := l.Models[reg]
	if !ok {
		return Request{}, fmt.Errorf("lab: no model %q", reg)
	}
	sys, user := verifier.PoolPrompt(params.PoolIndex)
	prompt, err := verifier.Prompt(r.Format, r.Tokenizer, sys, user)
	if err != nil {
		return Request{}, err
	}
	return Request{Body: verifier.RequestBody(reg, params, sys, user), Prompt: prompt, Params: params, Sampling: params.Sampling()}, nil
}

// Serve has p serve params against model reg and, if check, re-checks the
// answer with the reference for reg under profile.
func (l *Lab) Serve(ctx context.Context, p *Provider, reg string, params verifier.ShopperParams, check bool, profile verifier.Profile) (Trial, error) {
	req, err := l.Request(reg, params)
	if err != nil {
		return Trial{}, err
	}
	t := Trial{Params: params}
	start := time.Now()
	if t.Served, err = p.Serve(ctx, req); err != nil {
		return Trial{}, err
	}
	t.ServeTime = time.Since(start)
	if !check {
		return t, nil
	}
	start = time.Now()
	t.Report, err = l.Check(ctx, reg, req, t.Served.Answer, t.Served.Claim, profile)
	t.CheckTime = time.Since(start)
	return t, err
}

// Check re-checks an answer to req against model reg.
func (l *Lab) Check(ctx context.Context, reg string, req Request, ans verifier.Answer, claim verifier.Claim, profile verifier.Profile) (verifier.Report, error) {
	r, ok := l.Models[reg]
	if !ok {
		return verifier.Report{}, fmt.Errorf("lab: no model %q", reg)
	}
	job := verifier.Job{RequestBody: req.Body, Prompt: req.Prompt, Sampling: req.Sampling, ModelSHA256: r.SHA256, Profile: profile}
	return r.Checker.Check(ctx, job, ans, claim)
}
