package explorer_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/devnet/fleet"
	"github.com/mycel-network/mycel/internal/gateway"
)

// startFleet runs a devnet chain and the whole fleet on it (three
// providers, the verifier, the gateway with the explorer), as `mycel
// devnet` does, until the test ends.
func startFleet(t *testing.T, ctx context.Context) *fleet.Fleet {
	t.Helper()
	d, err := devnet.New(devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	chainCtx, stopChain := context.WithCancel(context.WithoutCancel(ctx))
	chainDone := make(chan error, 1)
	go func() { chainDone <- d.Run(chainCtx) }()
	t.Cleanup(func() {
		stopChain()
		if err := <-chainDone; err != nil {
			t.Errorf("devnet: %v", err)
		}
	})
	if err := d.WaitHeight(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	fl, err := fleet.New(ctx, fleet.Config{Devnet: d, GatewayAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	runDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { runDone <- fl.Run(runCtx, func() { close(ready) }) }()
	// Registered after the chain's: the fleet stops first.
	t.Cleanup(func() {
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("fleet: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-runDone:
		t.Fatalf("fleet stopped before ready: %v", err)
	}
	return fl
}

// risesJS is a JavaScript expression: whether the line chart sel has risen
// above its baseline (some point of its line is higher than the bottom).
func risesJS(sel string) string {
	return `(() => {
		const svg = document.querySelector(` + strconv.Quote(sel) + `);
		const line = svg && svg.querySelector('path[fill="none"]');
		if (!line) return false;
		const base = svg.viewBox.baseVal.height - 14;
		const ys = line.getAttribute("d").match(/-?[0-9.]+/g).filter((_, i) => i % 2 === 1).map(Number);
		return ys.some((y) => y < base - 1);
	})()`
}

// waitTrue polls the JavaScript expression until it is true.
func waitTrue(expr string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var ok bool
			if err := chromedp.Evaluate(expr, &ok).Do(ctx); err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// TestBrowserFleet loads the explorer of a real devnet fleet in headless
// chromium: it shows the providers and the verifier and no traffic; then
// chat completions go through the gateway with the OpenAI SDK, and the page
// shows them (request count, the requests/s and tokens/s charts rise, the
// TTFT histogram fills, the provider's row); then a provider is killed
// mid-stream and the failover chart shows the failover. No console errors;
// the screenshot is saved as an artifact.
func TestBrowserFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole network and a browser; skipped with -short")
	}
	if raceEnabled {
		t.Skip("the engine takes minutes under -race")
	}
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fl := startFleet(t, ctx)
	bctx, errs := startBrowser(t, chromium, 2*time.Minute)

	if err := chromedp.Run(bctx,
		log.Enable(),
		chromedp.Navigate(fl.ExplorerURL()),
		waitText("#providers-table tbody", "provider1"),
		waitText("#providers-table tbody", "provider2"),
		waitText("#providers-table tbody", "provider3"),
		waitText("#verifiers-table tbody", "verifier1"),
		waitText("#live-text", "live"),
		waitText("#t-requests", "0"),
		waitText("#s-requests", "0"),
	); err != nil {
		t.Fatalf("first load: %v (console errors: %q)", err, errs.list())
	}
	var rises bool
	if err := chromedp.Run(bctx, chromedp.Evaluate(risesJS("#c-rps"), &rises)); err != nil || rises {
		t.Fatalf("the requests/s chart rises before any request (err %v)", err)
	}

	// Real requests through the gateway, with the OpenAI SDK: one whole
	// answer, two streamed (the gateway times the first token of streams).
	sdk := oai.NewClient(option.WithBaseURL(fl.GatewayURL()+"/v1/"), option.WithAPIKey(fl.APIKey()), option.WithMaxRetries(0))
	var served string
	for i := range 3 {
		var resp *http.Response
		params := oai.ChatCompletionNewParams{Model: fleet.ServedModel, MaxTokens: oai.Int(24),
			Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Hello number " + strconv.Itoa(i))}}
		if i == 0 {
			cc, err := sdk.Chat.Completions.New(ctx, params, option.WithResponseInto(&resp))
			if err != nil {
				t.Fatalf("chat completion: %v", err)
			}
			if len(cc.Choices) != 1 || cc.Usage.CompletionTokens == 0 {
				t.Fatalf("chat completion = %+v, want an answer", cc)
			}
		} else {
			stream := sdk.Chat.Completions.NewStreaming(ctx, params, option.WithResponseInto(&resp))
			var text strings.Builder
			for stream.Next() {
				if c := stream.Current(); len(c.Choices) > 0 {
					text.WriteString(c.Choices[0].Delta.Content)
				}
			}
			if err := stream.Err(); err != nil || text.Len() == 0 {
				t.Fatalf("streamed chat completion: %q, %v", text.String(), err)
			}
		}
		served = resp.Header.Get(gateway.HeaderProvider)
	}
	name := map[string]string{}
	for addr, n := range fl.Names() {
		name[addr] = n
	}
	if err := chromedp.Run(bctx,
		waitText("#s-requests", "3"),
		waitText("#t-requests", "3"),
		waitText("#traffic-table tbody", name[strings.Split(served, ",")[0]]),
		waitTrue(risesJS("#c-rps")),
		waitTrue(risesJS("#c-tps")),
		waitTrue(`document.querySelectorAll("#c-ttft rect").length > 0`),
	); err != nil {
		t.Fatalf("after requests: %v (console errors: %q)", err, errs.list())
	}

	// A provider killed mid-stream: the gateway fails over, the failover chart shows it.
	var resp *http.Response
	stream := sdk.Chat.Completions.NewStreaming(ctx, oai.ChatCompletionNewParams{Model: fleet.ServedModel,
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Tell a long story")}, MaxTokens: oai.Int(400), Temperature: oai.Float(0)},
		option.WithResponseInto(&resp))
	chunks, killed := 0, ""
	var finish string
	for stream.Next() {
		c := stream.Current()
		if len(c.Choices) == 0 {
			continue
		}
		if c.Choices[0].Delta.Content != "" {
			chunks++
		}
		if c.Choices[0].FinishReason != "" {
			finish = c.Choices[0].FinishReason
		}
		if chunks == 4 && killed == "" {
			killed = resp.Header.Get(gateway.HeaderProvider) // the gateway names the provider it started on
			if err := fl.KillProvider(killed); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream across the kill: %v", err)
	}
	if killed == "" || finish == "" {
		t.Fatalf("stream: %d chunks, killed %q, finish %q: want a kill and a finished answer", chunks, killed, finish)
	}
	if err := chromedp.Run(bctx,
		waitText("#t-failovers", "1"),
		waitTrue(`document.querySelectorAll("#c-failovers rect").length > 0`),
		waitText("#t-fo-now", "1 total"),
		waitText("#t-requests", "4"), // counted once the answer is settled
	); err != nil {
		t.Fatalf("after the failover: %v (console errors: %q)", err, errs.list())
	}
	screenshot(t, bctx, "explorer-fleet.png")
	if e := errs.list(); len(e) != 0 {
		t.Errorf("console errors: %q", e)
	}
}
