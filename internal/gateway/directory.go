package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/router"
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
	// slots is each provider's advertised max_concurrent + queue_length per model (GET /mycel/v1/info),
	// replaced whole by every probe; a provider without the endpoint is absent (unknown).
	slots      map[string]map[string]int
	refreshErr error // the last refresh's failure, nil once one succeeds
	pubkeys    map[string]ed25519.PublicKey
	// shares is the traffic recently given to each provider per model, which the router
	// holds to the providers' proven-capacity bounds.
	shares *router.Shares
}

func newDirectory(chain Chain, client *http.Client, log *slog.Logger) *directory {
	return &directory{chain: chain, client: client, log: log, unhealthy: map[string]string{}, slots: map[string]map[string]int{}, pubkeys: map[string]ed25519.PublicKey{},
		shares: router.NewShares(0)}
}

func (d *directory) refresh(ctx context.Context) error {
	ps, err := d.chain.Providers(ctx)
	if err != nil {
		return d.failed(fmt.Errorf("providers: %w", err))
	}
	ms, err := d.chain.Models(ctx)
	if err != nil {
		return d.failed(fmt.Errorf("models: %w", err))
	}
	models := make(map[string]ledger.Model, len(ms))
	for _, m := range ms {
		models[m.ID] = m
	}
	d.mu.Lock()
	d.providers, d.models, d.loaded, d.refreshErr = ps, models, true, nil
	d.mu.Unlock()
	return nil
}

func (d *directory) failed(err error) error {
	d.mu.Lock()
	d.refreshErr = err
	d.mu.Unlock()
	return err
}

// health says why the gateway cannot serve ("" when it can): the ledger did not answer its
// last refresh, or no active provider passed its last health probe.
func (d *directory) health(ctx context.Context) string {
	if err := d.ensure(ctx); err != nil {
		return "ledger unreachable: " + err.Error()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refreshErr != nil {
		return "ledger unreachable: " + d.refreshErr.Error()
	}
	for _, p := range d.providers {
		if _, bad := d.unhealthy[p.Address]; p.Active && !bad {
			return ""
		}
	}
	return "no healthy provider: every registered provider is inactive, jailed or failed its health check"
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

// capacities returns the providers' advertised request slots per model (not to be modified).
func (d *directory) capacities() map[string]map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.slots
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
	slots := map[string]map[string]int{}
	for _, p := range ps {
		if !p.Active {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			why := d.check(ctx, p.Endpoint)
			var s map[string]int
			if why == "" {
				s = d.info(ctx, p.Endpoint)
			}
			mu.Lock()
			if why != "" {
				bad[p.Address] = why
			}
			if s != nil {
				slots[p.Address] = s
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	d.unhealthy, d.slots = bad, slots
	d.mu.Unlock()
}

// info reads the provider's GET /mycel/v1/info and returns the requests it takes per model
// (max_concurrent running plus queue_length waiting), nil if it has no such endpoint or
// advertises none.
func (d *directory) info(ctx context.Context, endpoint string) map[string]int {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/mycel/v1/info", nil)
	if err != nil {
		return nil
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var in struct {
		Models []struct {
			ID            string `json:"id"`
			MaxConcurrent int    `json:"max_concurrent"`
			QueueLength   int    `json:"queue_length"`
		} `json:"models"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&in) != nil {
		return nil
	}
	var out map[string]int
	for _, m := range in.Models {
		if m.MaxConcurrent > 0 {
			if out == nil {
				out = map[string]int{}
			}
			out[m.ID] = m.MaxConcurrent + max(m.QueueLength, 0)
		}
	}
	return out
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
