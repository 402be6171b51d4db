package explorer_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mycel-network/mycel/internal/tx"
)

// chromiumPath finds Debian's chromium (or another Chrome) or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install -y chromium): skipping the browser test")
	return ""
}

// artifactDir is $MYCEL_ARTIFACTS or a test temp dir.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("MYCEL_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// consoleErrors collects what the page reports as errors.
type consoleErrors struct {
	mu   sync.Mutex
	errs []string
}

func (c *consoleErrors) add(s string) {
	c.mu.Lock()
	c.errs = append(c.errs, s)
	c.mu.Unlock()
}

func (c *consoleErrors) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// startBrowser starts headless chromium for the test and collects what
// its pages report as errors (exceptions, console.error, log errors).
func startBrowser(t *testing.T, chromium string, timeout time.Duration) (context.Context, *consoleErrors) {
	t.Helper()
	// The profile directory is removed after the browser has been closed: chromium's
	// helper processes may still be writing to it while the browser exits, so t.TempDir's
	// cleanup (which fails the test on a non-empty directory) does not fit.
	profile, err := os.MkdirTemp("", "mycel-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 1000),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		tcancel()
		cancel()
		acancel()
		var err error
		for range 50 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // chromium's last helper processes are exiting
		}
		t.Logf("chromium profile %s left behind: %v", profile, err)
	})

	errs := &consoleErrors{}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			errs.add("exception: " + e.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				errs.add("console." + string(e.Type) + ": " + strings.Join(parts, " "))
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError {
				errs.add("log: " + e.Entry.Text + " " + e.Entry.URL)
			}
		}
	})
	return ctx, errs
}

// waitText waits until the element's text contains want.
func waitText(sel, want string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var got string
		for {
			err := chromedp.Text(sel, &got, chromedp.ByQuery, chromedp.NodeVisible).Do(ctx)
			if err == nil && strings.Contains(got, want) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %q in %s (have %q): %w", want, sel, got, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// screenshot saves a full-page screenshot as the artifact name.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}

// TestBrowser loads the explorer in headless chromium against a devnet
// chain with a fake gateway's traffic (TestBrowserFleet runs a real one):
// no console errors, the registered providers are shown, and the page
// changes after a transaction and after gateway traffic.
func TestBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	n := startNet(t, true)
	n.registerModel(t)
	n.registerProvider(t, "provider1", 2_000_000)
	n.registerProvider(t, "provider2", 3_000_000)
	n.submit(t, "verifier1", tx.RegisterVerifier{Stake: 150_000_000})
	p1, p2 := n.addr(t, "provider1"), n.addr(t, "provider2")
	n.submit(t, "alice", tx.OpenChannel{Provider: p1, Deposit: 40_000_000})
	n.traffic.serve(p1, 120, 40)
	n.traffic.serve(p2, 80, 90)

	ctx, errs := startBrowser(t, chromium, 90*time.Second)

	if err := chromedp.Run(ctx,
		log.Enable(),
		chromedp.Navigate(n.srv.URL+"/explorer"),
		waitText("#providers-table tbody", "provider1"),
		waitText("#providers-table tbody", "provider2"),
		waitText("#verifiers-table tbody", "verifier1"),
		waitText("#channels-table tbody", "alice"),
		waitText("#txs-table tbody", "open_channel"),
		waitText("#traffic-table tbody", "provider2"),
		waitText("#s-requests", "2"),
		waitText("#live-text", "live"),
	); err != nil {
		t.Fatalf("first load: %v (console errors: %q)", err, errs.list())
	}

	// A transaction: a third provider registers; the page shows it without a reload.
	n.registerProvider(t, "provider3", 1_500_000)
	// Traffic through the gateway: the request count changes.
	for range 3 {
		n.traffic.serve(n.addr(t, "provider3"), 64, 25)
	}
	if err := chromedp.Run(ctx,
		waitText("#providers-table tbody", "provider3"),
		waitText("#txs-table tbody", "register_provider"),
		waitText("#s-requests", "5"),
		waitText("#traffic-table tbody", "provider3"),
	); err != nil {
		t.Fatalf("live update: %v (console errors: %q)", err, errs.list())
	}

	// The search box finds an address.
	if err := chromedp.Run(ctx,
		chromedp.SetValue("#q", p1, chromedp.ByID),
		chromedp.Click("#search button", chromedp.ByQuery),
		waitText("#result-title", "Address "+p1),
		waitText("#result-body", "register_provider"),
		chromedp.Click("#result-close", chromedp.ByID),
		chromedp.Evaluate("window.scrollTo(0, 0)", nil),
	); err != nil {
		t.Fatalf("search: %v (console errors: %q)", err, errs.list())
	}

	screenshot(t, ctx, "explorer.png")
	if e := errs.list(); len(e) != 0 {
		t.Errorf("console errors: %q", e)
	}
}
