package gateway

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/ledger"
)

// directory caches the ledger's providers and models and the health of each provider.
type directory struct {
	chain  Chain
	client *http.Client
	log    *slog.Logger

	mu        sync.Mutex
	loaded    bool
	providers []ledger.ProviderView
	models    map[string]ledger.Model
	unhealthy map[string]string // provider → why
	pubkeys   map[string]ed25519.PublicKey
}

func newDirectory(chain Chain, client *http.Client, log *slog.Logger) *directory {
	return &directory{chain: chain, client: client, log: log, unhealthy: map[string]string{}, pubkeys: map[string]ed25519.PublicKey{}}
}

func (d *directory) refresh(ctx context.Context) error {
	ps, err := d.chain.Providers(ctx)
	if err != nil {
		return fmt.Errorf("providers: %w", err)
	}
	ms, err := d.chain.Models(ctx)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	models := make(map[string]ledger.Model, len(ms))
	for _, m := range ms {
		models[m.ID] = m
	}
	d.mu.Lock()
	d.providers, d.models, d.loaded = ps, models, true
	d.mu.Unlock()
	return nil
}

// ensure loads the directory on first use (before the first refresh tick).
func (d *directory) ensure(ctx context.Context) error {
	d.mu.Lock()
	loaded := d.loaded
	d.mu.Unlock()
	if loaded {
		return nil
	}
	return d.refresh(ctx)
}

func (d *directory) snapshot() ([]ledger.ProviderView, map[string]ledger.Model, map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.providers, d.models, d.unhealthy
}

func (d *directory) endpoint(provider string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.providers {
		if p.Address == provider {
			return p.Endpoint
		}
	}
	return ""
}

func (d *directory) pubkey(ctx context.Context, provider string) (ed25519.PublicKey, error) {
	d.mu.Lock()
	k := d.pubkeys[provider]
	d.mu.Unlock()
	if k != nil {
		return k, nil
	}
	k, err := d.chain.PubKey(ctx, provider)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.pubkeys[provider] = k
	d.mu.Unlock()
	return k, nil
}

// probe checks every active provider's /healthz concurrently.
func (d *directory) probe(ctx context.Context) {
	d.mu.Lock()
	ps := slices.Clone(d.providers)
	d.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := map[string]string{}
	for _, p := range ps {
		if !p.Active {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if why := d.check(ctx, p.Endpoint); why != "" {
				mu.Lock()
				bad[p.Address] = why
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	d.unhealthy = bad
	d.mu.Unlock()
}

func (d *directory) check(ctx context.Context, endpoint string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/healthz", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "health check: " + err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("health check: status %d", resp.StatusCode)
	}
	return ""
}
