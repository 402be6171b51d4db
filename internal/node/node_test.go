package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cometbft/cometbft/abci/example/kvstore"
	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/proxy"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/google/go-cmp/cmp"
)

func TestConfigRoundTrip(t *testing.T) {
	home := t.TempDir()
	cfg := DefaultConfig(home)
	Fast(cfg, false)
	Listen(cfg, 30001, 30002)
	cfg.P2P.PersistentPeers = "abc@127.0.0.1:1,def@127.0.0.1:2"
	cfg.Moniker = "round-trip"
	if _, _, err := InitFiles(cfg); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Moniker, P2P, RPC, Peers              string
		Commit, Flush                         time.Duration
		Empty, DupIP, Strict, Pex, Prometheus bool
		MempoolSize                           int
		MaxTxsBytes                           int64
		Interval                              time.Duration
	}
	v := func(c *cmtcfg.Config) view {
		return view{c.Moniker, c.P2P.ListenAddress, c.RPC.ListenAddress, c.P2P.PersistentPeers,
			c.Consensus.TimeoutCommit, c.P2P.FlushThrottleTimeout,
			c.Consensus.CreateEmptyBlocks, c.P2P.AllowDuplicateIP, c.P2P.AddrBookStrict, c.P2P.PexReactor,
			c.Instrumentation.Prometheus, c.Mempool.Size, c.Mempool.MaxTxsBytes, c.Consensus.CreateEmptyBlocksInterval}
	}
	if diff := cmp.Diff(v(cfg), v(got)); diff != "" {
		t.Errorf("config after write and load (-want +got):\n%s", diff)
	}
	if got.RootDir != home {
		t.Errorf("RootDir = %q, want %q", got.RootDir, home)
	}
}

func TestRPCURL(t *testing.T) {
	for _, tc := range []struct{ laddr, want string }{
		{"tcp://0.0.0.0:26657", "http://127.0.0.1:26657"},
		{"tcp://127.0.0.1:5", "http://127.0.0.1:5"},
		{"127.0.0.1:7", "http://127.0.0.1:7"},
	} {
		cfg := DefaultConfig(t.TempDir())
		cfg.RPC.ListenAddress = tc.laddr
		if got := RPCURL(cfg); got != tc.want {
			t.Errorf("RPCURL(%q) = %q, want %q", tc.laddr, got, tc.want)
		}
	}
}

// TestNodeRunsKVStore runs a one-validator node around CometBFT's example
// key-value application, commits a transaction over HTTP RPC and stops on
// cancel.
func TestNodeRunsKVStore(t *testing.T) {
	home := t.TempDir()
	cfg := DefaultConfig(home)
	Fast(cfg, true)
	ports, err := FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	Listen(cfg, ports[0], ports[1])
	pub, _, err := InitFiles(cfg)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Genesis("node-test", time.Now(), []Validator{{Name: "v0", PubKey: pub}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteGenesis(cfg, doc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := New(ctx, cfg, proxy.NewLocalClientCreator(kvstore.NewInMemoryApplication()), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()

	c, err := rpchttp.New(n.RPCAddr(), "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var res any
	for {
		r, err := c.BroadcastTxCommit(ctx, []byte("name=mycel"))
		if err == nil {
			if r.CheckTx.Code != 0 || r.TxResult.Code != 0 {
				t.Fatalf("tx failed: check %d, deliver %d", r.CheckTx.Code, r.TxResult.Code)
			}
			res = r.Height
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broadcast: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // RPC server still starting
	}
	q, err := c.ABCIQuery(ctx, "", []byte("name"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(q.Response.Value); got != "mycel" {
		t.Errorf("query name = %q, want %q (tx at height %v)", got, "mycel", res)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}

}
