package fleet_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/devnet/fleet"
	"github.com/mycel-network/mycel/internal/explorer"
	"github.com/mycel-network/mycel/internal/ledger"
)

// TestFleet starts the whole network on a devnet: three providers and a
// cheater on the built-in engine with the demo models, and the gateway
// with the explorer. A chat completion through the gateway with the
// devnet's API key is answered, and the explorer on the gateway's address
// shows the providers and the request.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("generates the demo models and loads four engines; skipped with -short")
	}
	if raceEnabled {
		t.Skip("model generation and the engine take minutes under -race")
	}
	dir := t.TempDir()
	d, err := devnet.New(devnet.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	chainCtx, stopChain := context.WithCancel(ctx)
	chainDone := make(chan error, 1)
	go func() { chainDone <- d.Run(chainCtx) }()
	defer func() {
		stopChain()
		if err := <-chainDone; err != nil {
			t.Errorf("devnet: %v", err)
		}
	}()
	if err := d.WaitHeight(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	var steps []string
	fl, err := fleet.New(ctx, fleet.Config{Devnet: d, GatewayAddr: "127.0.0.1:0", Cheater: "substitute", NoVerifier: true,
		Progress: func(msg string) { steps = append(steps, msg) }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { runDone <- fl.Run(runCtx, func() { close(ready) }) }()
	defer func() {
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("fleet Run: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-runDone:
		t.Fatalf("fleet stopped before ready: %v", err)
	}
	if len(steps) == 0 || !strings.Contains(steps[0], "demo models") {
		t.Errorf("progress = %q, want model generation first", steps)
	}
	if err := d.SetServices(fl.GatewayURL(), fl.APIKey(), fl.ExplorerURL()); err != nil {
		t.Fatal(err)
	}
	in, err := devnet.ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Gateway != fl.GatewayURL() || in.APIKey != fl.APIKey() || in.Explorer != fl.ExplorerURL() || in.Accounts[fleet.CheaterName] == "" {
		t.Errorf("devnet.json = %+v, want gateway, api key, explorer and the cheater's account", in)
	}

	var providers []ledger.ProviderView
	getJSON(t, fl.ExplorerURL()+"/api/providers", &providers)
	if len(providers) != 4 {
		t.Fatalf("explorer shows %d providers, want 4", len(providers))
	}
	for _, p := range providers {
		if !p.Active || len(p.Models) == 0 || p.Models[0].ModelID != fleet.ServedModel {
			t.Errorf("provider %s: active %v models %+v, want active serving %s", p.Address, p.Active, p.Models, fleet.ServedModel)
		}
	}

	// An OpenAI SDK, as users would point it at the devnet.
	sdk := oai.NewClient(option.WithBaseURL(fl.GatewayURL()+"/v1/"), option.WithAPIKey(fl.APIKey()), option.WithMaxRetries(0))
	cc, err := sdk.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: fleet.ServedModel,
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Hello")}, MaxTokens: oai.Int(8)})
	if err != nil {
		t.Fatalf("chat completion: %v", err)
	}
	if len(cc.Choices) != 1 || cc.Usage.CompletionTokens == 0 {
		t.Fatalf("chat completion = %+v, want one choice with tokens", cc)
	}

	var tr struct {
		Attached bool `json:"attached"`
		explorer.TrafficSnapshot
	}
	getJSON(t, fl.ExplorerURL()+"/api/traffic", &tr)
	var served uint64
	for _, p := range tr.Providers {
		served += p.TokensOut
	}
	if !tr.Attached || tr.Requests != 1 || tr.Errors != 0 || served < uint64(cc.Usage.CompletionTokens) || len(tr.Providers) != 4 {
		t.Errorf("traffic = %+v, want 1 request without error, >= %d tokens served, 4 providers", tr, cc.Usage.CompletionTokens)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
