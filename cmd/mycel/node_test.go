package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/explorer"
	"github.com/mycel-network/mycel/internal/node"
)

// TestExplorerMux serves the node's explorer routes over a devnet chain:
// / redirects to /explorer, the page and its API answer.
func TestExplorerMux(t *testing.T) {
	d := startDevnet(t)
	local, err := d.Local(0)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(explorerMux(explorer.Deps{Chain: local}))
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != explorer.Prefix {
		t.Errorf("GET / = %s Location %q, want 302 to %s", resp.Status, resp.Header.Get("Location"), explorer.Prefix)
	}
	page := httpGet(t, srv.URL+explorer.Prefix)
	if !strings.Contains(page, "<title>Mycel Explorer</title>") {
		t.Errorf("GET /explorer: no explorer page:\n%.300s", page)
	}
	var o explorer.Overview
	if err := json.Unmarshal([]byte(httpGet(t, srv.URL+explorer.Prefix+"/api/overview")), &o); err != nil {
		t.Fatal(err)
	}
	if o.ChainID != d.ChainID() || o.Height < 1 || o.Gateway {
		t.Errorf("overview = %+v, want chain %s at height ≥ 1 and no gateway", o, d.ChainID())
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v: %.300s", url, resp.Status, err, b)
	}
	return string(b)
}

// TestNodeServesExplorer runs `mycel node` without --explorer-addr: it
// serves the explorer by default (at DefaultNodeExplorerAddr, or it says
// that address is taken), and with --explorer-addr at that address, where
// the page shows the node's chain.
func TestNodeServesExplorer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mycel and runs a node process; skipped with -short")
	}
	bin := buildMycel(t)
	ports, err := node.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "home")
	mustMycel(t, "init", "--home", home, "--chain-id", "explorer-test", "--fast",
		"--p2p-laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), "--rpc-laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]))

	// waitOverview polls the explorer's overview until the chain has a block.
	waitOverview := func(p *devnetProcess, base string) explorer.Overview {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var o explorer.Overview
			if resp, err := http.Get(base + explorer.Prefix + "/api/overview"); err == nil {
				err = json.NewDecoder(resp.Body).Decode(&o)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK && o.Height >= 1 {
					return o
				}
			}
			select {
			case err := <-p.done:
				t.Fatalf("mycel node exited: %v\n%s", err, p.out)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no explorer with a block at %s after 30 s\n%s", base, p.out)
			}
			time.Sleep(50 * time.Millisecond) // polling another process: nothing to wait on
		}
	}

	// By default: the explorer is on, or the node says why not.
	p := startProcess(t, bin, "node", "--home", home, "--log-level", "info")
	served := regexp.MustCompile(`"explorer listening" url=http://(127\.0\.0\.1:26680)/explorer`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := p.out.String()
		if m := served.FindStringSubmatch(out); m != nil {
			if o := waitOverview(p, "http://"+m[1]); o.ChainID != "explorer-test" {
				t.Errorf("default explorer shows chain %q, want explorer-test", o.ChainID)
			}
			break
		}
		if strings.Contains(out, "explorer not served: its default address is taken") {
			t.Logf("%s is taken on this machine; the node said so and ran on", DefaultNodeExplorerAddr)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node neither serves the explorer by default nor says why not:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond) // polling another process's output
	}
	p.interrupt(t, 30*time.Second)

	// At a chosen address.
	addr := freeAddr(t)
	p = startProcess(t, bin, "node", "--home", home, "--log-level", "warn", "--explorer-addr", addr)
	if o := waitOverview(p, "http://"+addr); o.ChainID != "explorer-test" {
		t.Errorf("explorer at %s shows chain %q, want explorer-test", addr, o.ChainID)
	}
	if page := httpGet(t, "http://"+addr+explorer.Prefix); !strings.Contains(page, "<title>Mycel Explorer</title>") {
		t.Errorf("GET /explorer: no explorer page:\n%.300s", page)
	}
	p.interrupt(t, 30*time.Second)

	// An explicitly chosen address that is taken is an error.
	ln := httptest.NewServer(http.NotFoundHandler())
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb strings.Builder
	err = run(ctx, []string{"node", "--home", home, "--explorer-addr", strings.TrimPrefix(ln.URL, "http://")}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "explorer") {
		t.Errorf("node with a taken --explorer-addr: %v, want an explorer error", err)
	}
}
