package chainclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

func startDevnet(t *testing.T) (*devnet.Devnet, context.Context) {
	t.Helper()
	d, err := devnet.New(devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devnet: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := d.WaitHeight(wctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(tcancel)
	return d, tctx
}

func key(t *testing.T, d *devnet.Devnet, name string) keys.Key {
	t.Helper()
	k, err := d.Key(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet; skipped with -short")
	}
	d, ctx := startDevnet(t)
	alice, bob, carol := key(t, d, "alice"), key(t, d, "bob"), key(t, d, "carol")
	for name, dial := range map[string]func() (*chainclient.Client, error){
		"http": func() (*chainclient.Client, error) { return chainclient.Dial(d.RPCAddr()) },
		"local": func() (*chainclient.Client, error) {
			l, err := d.Local(0)
			return chainclient.New(l), err
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			if id, err := c.ChainID(ctx); err != nil || id != d.ChainID() {
				t.Fatalf("ChainID = %q, %v; want %q", id, err, d.ChainID())
			}
			before, err := c.Account(ctx, bob.Address)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Submit(ctx, alice, tx.Send{To: bob.Address, Amount: 7})
			if err != nil {
				t.Fatal(err)
			}
			if res.Code != 0 || res.Height < 1 || len(res.Hash) != 64 || len(res.Events) == 0 {
				t.Errorf("Submit result %+v", res)
			}
			after, err := c.Account(ctx, bob.Address)
			if err != nil {
				t.Fatal(err)
			}
			if after.Balance != before.Balance+7 {
				t.Errorf("bob balance %d, want %d", after.Balance, before.Balance+7)
			}

			// A rejection keeps the ledger's code.
			_, err = c.Submit(ctx, carol, tx.Send{To: bob.Address, Amount: devnet.DemoBalance * 2})
			var txErr *chainclient.TxError
			if !errors.As(err, &txErr) || txErr.Code != ledger.CodeInsufficientFunds || chainclient.Code(err) != ledger.CodeInsufficientFunds {
				t.Errorf("overspend: error %v, want a TxError with code %d", err, ledger.CodeInsufficientFunds)
			}

			// Queries.
			var p ledger.Params
			if err := c.Query(ctx, "params", nil, &p); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ledger.DefaultParams(), p); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
			err = c.Query(ctx, "channel/12345", nil, nil)
			if !errors.Is(err, ledger.ErrNotFound) || chainclient.Code(err) != ledger.CodeNotFound {
				t.Errorf("missing channel: error %v, want not found", err)
			}
			if _, err := c.Account(ctx, "not-an-address"); err == nil {
				t.Error("Account(bad address) succeeded")
			}
			if _, err := c.Submit(ctx, alice, "not a message"); err == nil {
				t.Error("Submit(string) succeeded")
			}
		})
	}
}

// TestSenderPipelines sends many transactions from one key without waiting
// for each, then checks all of them committed in nonce order.
func TestSenderPipelines(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet; skipped with -short")
	}
	d, ctx := startDevnet(t)
	alice, bob := key(t, d, "alice"), key(t, d, "bob")
	c, err := chainclient.Dial(d.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	s := c.NewSender(alice)
	const n = 30
	hashes := make([][]byte, n)
	for i := range hashes {
		if hashes[i], err = s.Broadcast(ctx, tx.Send{To: bob.Address, Amount: uint64(i + 1)}); err != nil {
			t.Fatalf("broadcast %d: %v", i, err)
		}
	}
	for i, h := range hashes {
		if _, err := c.Wait(ctx, h); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	acc, err := c.Account(ctx, alice.Address)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Nonce != n {
		t.Errorf("alice nonce %d, want %d", acc.Nonce, n)
	}
	// The Sender recovers when its nonce goes stale (another client used the key).
	if _, err := c.Submit(ctx, alice, tx.Send{To: bob.Address, Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(ctx, tx.Send{To: bob.Address, Amount: 2}); err == nil {
		t.Fatal("stale nonce accepted")
	} else if chainclient.Code(err) != ledger.CodeNonce {
		t.Fatalf("stale nonce: %v, want code %d", err, ledger.CodeNonce)
	}
	if _, err := s.Submit(ctx, tx.Send{To: bob.Address, Amount: 3}); err != nil {
		t.Errorf("after a stale nonce the sender should reload it: %v", err)
	}
}

func TestMessages(t *testing.T) {
	send := tx.Send{To: "myc1x", Amount: 1}
	m, err := tx.NewMsg(send)
	if err != nil {
		t.Fatal(err)
	}
	got, err := chainclient.Messages(send, m)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tx.Msg{m, m}, got); diff != "" {
		t.Errorf("Messages (-want +got):\n%s", diff)
	}
	for _, bad := range [][]any{nil, {42}, {"send"}} {
		if _, err := chainclient.Messages(bad...); err == nil {
			t.Errorf("Messages(%v) succeeded", bad)
		}
	}
}
