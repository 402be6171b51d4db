package fleet

import (
	"context"
	"fmt"

	"github.com/mycel-network/mycel/internal/provider"
)

// Engine is an honest provider of ServedModel whose answers come from an
// OpenAI-compatible engine (Ollama, llama.cpp's server) already serving the
// demo model's file; the provider reads the tokenizer and the file hash
// from the demo GGUF.
type Engine struct {
	// Name is the provider's key name (a new account, funded by alice).
	Name string
	// BaseURL is the engine's OpenAI API, e.g. http://127.0.0.1:11434/v1.
	BaseURL string
	// Profile is the engine's profile (backend.ProfileNames: ollama, llamacpp, ...).
	Profile string
	// ModelName is the engine's name for the model.
	ModelName string
	// PriceIn and PriceOut (umyc per 1M tokens); 30,000 and 90,000 if 0,
	// below every demo provider, so that the gateway's router prefers it.
	PriceIn, PriceOut uint64
}

func (f *Fleet) addEngine(ctx context.Context, e Engine) error {
	if e.Name == "" || e.BaseURL == "" || e.ModelName == "" {
		return fmt.Errorf("fleet: engine provider %q: name, base URL and model name are required", e.Name)
	}
	if e.Name == CheaterName || e.Name == "alice" {
		return fmt.Errorf("fleet: engine provider %q: name taken", e.Name)
	}
	for _, p := range demoProviders() {
		if p.name == e.Name {
			return fmt.Errorf("fleet: engine provider %q: name taken", e.Name)
		}
	}
	if e.PriceIn == 0 && e.PriceOut == 0 {
		e.PriceIn, e.PriceOut = 30_000, 90_000
	}
	if err := f.fund(ctx, e.Name); err != nil {
		return err
	}
	return f.addProvider(ctx, providerSpec{name: e.Name, priceIn: e.PriceIn, priceOut: e.PriceOut, concurrent: 2, engine: &e}, "")
}

// engineModel is the model entry of an engine-backed provider.
func (f *Fleet) engineModel(e Engine, concurrent int, priceIn, priceOut uint64) provider.ModelConfig {
	m := provider.DefaultModel()
	m.ID, m.Backend, m.GGUF, m.ContextLength = ServedModel, provider.BackendOpenAI, f.models[ServedModel].Path, 1024
	m.BaseURL, m.Profile, m.ModelName = e.BaseURL, e.Profile, e.ModelName
	m.PriceInPerMTok, m.PriceOutPerMTok, m.MaxConcurrent = priceIn, priceOut, concurrent
	return m
}

// Engine is the profile of the engine behind the provider ("builtin" for
// Mycel's own).
func (p *Provider) Engine() string {
	if p.engine != "" {
		return p.engine
	}
	return provider.BackendBuiltin
}

// Answered is the number of requests the provider answered (HTTP 200), from
// its metrics: the gateway's and the verifier's shopper requests alike.
func (p *Provider) Answered() uint64 {
	mfs, err := p.reg.Gather()
	if err != nil {
		return 0
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "mycel_provider_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == "200" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return uint64(n)
}
