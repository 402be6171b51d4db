package devnet

import (
	"bytes"
	"context"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/tx"
)

func start(t *testing.T, cfg Config) (*Devnet, context.Context) {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for i := 0; i < d.Validators(); i++ {
		if err := d.WaitHeight(wctx, i, 1); err != nil {
			t.Fatal(err)
		}
	}
	return d, ctx
}

func client(t *testing.T, d *Devnet, i int) *chainclient.Client {
	t.Helper()
	c, err := d.Client(i, chainclient.WithCommitTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four in-process validators; skipped with -short")
	}
	d, ctx := start(t, Config{Dir: t.TempDir(), Validators: 4, CometLogger: debugLogger})
	tctx, cancel := context.WithTimeout(ctx, 50*time.Second)
	defer cancel()
	alice, _ := d.Key("alice")
	bob, _ := d.Key("bob")
	clients := make([]*chainclient.Client, 4)
	for i := range clients {
		clients[i] = client(t, d, i)
	}

	// A transaction sent to any node commits on all.
	var want uint64
	for i := range clients {
		amount := uint64(1000 + i)
		res, err := clients[i].NewSender(alice).Submit(tctx, tx.Send{To: bob.Address, Amount: amount})
		if err != nil {
			t.Fatalf("send via validator %d: %v", i, err)
		}
		want += amount
		for j := range clients {
			if err := d.WaitHeight(tctx, j, res.Height); err != nil {
				t.Fatal(err)
			}
		}
	}
	for j, c := range clients {
		acc, err := c.Account(tctx, bob.Address)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Balance != DemoBalance+want {
			t.Errorf("validator %d: bob balance %d, want %d", j, acc.Balance, DemoBalance+want)
		}
	}

	// Stop one: the chain goes on (3 of 4 is more than 2/3 of the power).
	if err := d.Stop(3); err != nil {
		t.Fatal(err)
	}
	var last int64
	for k := 0; k < 3; k++ {
		res, err := clients[k%3].NewSender(alice).Submit(tctx, tx.Send{To: bob.Address, Amount: 1})
		if err != nil {
			t.Fatalf("send with validator 3 stopped: %v", err)
		}
		last = res.Height
		for j := 0; j < 3; j++ {
			if err := d.WaitHeight(tctx, j, res.Height); err != nil {
				t.Fatal(err)
			}
		}
	}
	want += 3

	// Restart it: it catches up.
	if err := d.Restart(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitHeight(tctx, 3, last+1); err != nil {
		t.Fatal(err)
	}
	// A new client: the old one may hold a keep-alive connection to the
	// stopped node's RPC server, which in one process outlives the node.
	clients[3] = client(t, d, 3)
	acc, err := clients[3].Account(tctx, bob.Address)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Balance != DemoBalance+want {
		t.Errorf("restarted validator: bob balance %d, want %d", acc.Balance, DemoBalance+want)
	}

	// All app hashes are equal: compare each validator's block headers
	// (which carry the app hash of the previous block) and its app store.
	var ref []byte
	for i := range clients {
		h, err := headerAppHash(tctx, d, i, last+1)
		if err != nil {
			t.Fatalf("validator %d: %v", i, err)
		}
		if i == 0 {
			ref = h
		} else if !bytes.Equal(h, ref) {
			t.Errorf("validator %d: app hash after %d = %X, validator 0 says %X", i, last, h, ref)
		}
	}
	hashes := map[int64][]byte{}
	for i := range clients {
		h, hash, err := d.AppCommit(i)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := hashes[h]; ok && !bytes.Equal(prev, hash) {
			t.Errorf("validator %d: app hash at %d = %X, another validator has %X", i, h, hash, prev)
		}
		hashes[h] = hash
		hdr, err := headerAppHash(tctx, d, 0, h+1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hdr, hash) {
			t.Errorf("validator %d: stored app hash at %d = %X, block %d header says %X", i, h, hash, h+1, hdr)
		}
	}
}

// headerAppHash returns the app hash in validator i's header of block h
// (the state after block h-1), waiting for the block to exist.
func headerAppHash(ctx context.Context, d *Devnet, i int, h int64) ([]byte, error) {
	if err := d.WaitHeight(ctx, i, h); err != nil {
		return nil, err
	}
	c, err := rpchttp.New(d.RPCAddrOf(i), "/websocket")
	if err != nil {
		return nil, err
	}
	r, err := c.Header(ctx, &h)
	if err != nil {
		return nil, err
	}
	return r.Header.AppHash, nil
}

func TestResumeSameDir(t *testing.T) {
	dir := t.TempDir()
	var height int64
	var bobBalance uint64
	{
		d, ctx := start(t, Config{Dir: dir})
		alice, _ := d.Key("alice")
		bob, _ := d.Key("bob")
		c := client(t, d, 0)
		res, err := c.Submit(ctx, alice, tx.Send{To: bob.Address, Amount: 42})
		if err != nil {
			t.Fatal(err)
		}
		height = res.Height
		acc, err := c.Account(ctx, bob.Address)
		if err != nil {
			t.Fatal(err)
		}
		bobBalance = acc.Balance
		in, err := ReadInfo(dir)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(d.Info(), in); diff != "" {
			t.Errorf("devnet.json (-want +got):\n%s", diff)
		}
		if in.Accounts["alice"] != alice.Address || len(in.Accounts) != len(DemoAccounts()) {
			t.Errorf("devnet.json accounts = %v", in.Accounts)
		}
		if err := d.Stop(0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(Config{Dir: dir, Validators: 4}); err == nil {
		t.Error("New with 4 validators on a 1-validator dir succeeded, want an error")
	}
	d, ctx := start(t, Config{Dir: dir})
	if got := d.Height(0); got < height {
		t.Errorf("resumed at height %d, want ≥ %d", got, height)
	}
	bob, _ := d.Key("bob")
	acc, err := client(t, d, 0).Account(ctx, bob.Address)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Balance != bobBalance {
		t.Errorf("bob balance after resume %d, want %d", acc.Balance, bobBalance)
	}
}
