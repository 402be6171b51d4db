package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"

	"github.com/mycel-network/mycel/internal/abciapp"
	"github.com/mycel-network/mycel/internal/node"
)

// TestTestnet writes a two-validator testnet and runs both nodes (in this
// process, each from its own home as `mycel node --home` would): they
// peer, make blocks and agree on the app hash.
func TestTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two nodes; skipped with -short")
	}
	out := t.TempDir()
	free, err := node.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	base := free[0]
	if base+11 > 65535 {
		base -= 100
	}
	mustMycel(t, "testnet", "--validators", "2", "--output", out, "--base-port", fmt.Sprint(base))
	if _, _, err := mycel(t, "testnet", "--validators", "2", "--output", out); err == nil {
		t.Error("a second testnet into the same directory succeeded")
	}

	var genesis [][]byte
	homes := []string{filepath.Join(out, "node0"), filepath.Join(out, "node1")}
	for i, home := range homes {
		cfg, err := node.LoadConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("tcp://127.0.0.1:%d", base+10*i+1); cfg.RPC.ListenAddress != want {
			t.Errorf("node%d rpc %s, want %s", i, cfg.RPC.ListenAddress, want)
		}
		g, err := os.ReadFile(cfg.GenesisFile())
		if err != nil {
			t.Fatal(err)
		}
		genesis = append(genesis, g)
		other := filepath.Join(out, fmt.Sprintf("node%d", 1-i), "config", "node_key.json")
		k, err := p2p.LoadNodeKey(other)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%s@127.0.0.1:%d", k.ID(), base+10*(1-i)); cfg.P2P.PersistentPeers != want {
			t.Errorf("node%d persistent peers %q, want %q", i, cfg.P2P.PersistentPeers, want)
		}
	}
	if !bytes.Equal(genesis[0], genesis[1]) {
		t.Error("the nodes have different genesis files")
	}
	if _, err := os.Stat(filepath.Join(out, "keys", "alice.json")); err != nil {
		t.Errorf("demo keys: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	apps := make([]*abciapp.App, 2)
	done := make(chan error, 2)
	runCtx, stop := context.WithCancel(ctx)
	for i, home := range homes {
		cfg, err := node.LoadConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		n, app, err := node.OpenLedger(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		apps[i] = app
		go func() { done <- n.Run(runCtx) }()
	}
	defer func() {
		stop()
		for range homes {
			if err := <-done; err != nil {
				t.Errorf("node: %v", err)
			}
		}
	}()
	// Both validators must sign every block; wait for height 4 on both, then
	// compare the app hashes the block headers at heights 2 to 4 commit to,
	// as each node's own RPC serves them.
	for {
		h0, _ := apps[0].LastCommit()
		h1, _ := apps[1].LastCommit()
		if h0 >= 4 && h1 >= 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testnet stuck at heights %d, %d", h0, h1)
		case <-time.After(50 * time.Millisecond): // polling two running nodes
		}
	}
	for h := 2; h <= 4; h++ {
		var hashes []string
		for i := range homes {
			hashes = append(hashes, headerAppHash(ctx, t, fmt.Sprintf("http://127.0.0.1:%d", base+10*i+1), h))
		}
		if hashes[0] == "" || hashes[0] != hashes[1] {
			t.Errorf("app hash in the header at height %d: node0 %q, node1 %q", h, hashes[0], hashes[1])
		}
	}
}

// headerAppHash reads the app hash in the header of the block at height h
// from a node's CometBFT RPC.
func headerAppHash(ctx context.Context, t *testing.T, rpc string, h int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/block?height=%d", rpc, h), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("block %d from %s: %v", h, rpc, err)
	}
	defer resp.Body.Close()
	var out struct {
		Result struct {
			Block struct {
				Header struct {
					Height  string `json:"height"`
					AppHash string `json:"app_hash"`
				} `json:"header"`
			} `json:"block"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("block %d from %s: %v", h, rpc, err)
	}
	if got := out.Result.Block.Header.Height; got != fmt.Sprint(h) {
		t.Fatalf("block %d from %s: header height %q", h, rpc, got)
	}
	return out.Result.Block.Header.AppHash
}

func TestInit(t *testing.T) {
	home := t.TempDir()
	out := mustMycel(t, "init", "--home", home, "--chain-id", "init-test", "--fund", "alice=10myc", "--output", "json")
	res := decode[struct {
		ChainID  string `json:"chain_id"`
		Accounts []struct {
			Name    string `json:"name"`
			Balance uint64 `json:"balance"`
		} `json:"accounts"`
	}](t, out)
	if res.ChainID != "init-test" || len(res.Accounts) != 1 || res.Accounts[0].Balance != 10_000_000 {
		t.Errorf("init output %+v", res)
	}
	if _, err := node.LoadConfig(home); err != nil {
		t.Errorf("config: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "--home", home}, "already exists"},
		{[]string{"init", "--home", t.TempDir(), "--fund", "alice"}, "want NAME=AMOUNT"},
		{[]string{"init", "--home", t.TempDir(), "--fund", "alice=5"}, "parse amount"},
		{[]string{"init", "--home", t.TempDir(), "extra"}, "unexpected argument"},
	} {
		_, _, err := mycel(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mycel %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
