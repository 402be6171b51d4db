package devnet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/node"
	"github.com/mycel-network/mycel/internal/tx"
)

// TestHandshakeReplaysMissedBlocks puts an old copy of the app store under a
// node whose CometBFT stores are newer (what a crash right after CometBFT
// saved blocks but before the app committed them leaves, many times over):
// on restart the ABCI handshake must replay the missed blocks and reach the
// same height and app hash.
func TestHandshakeReplaysMissedBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet; skipped with -short")
	}
	d, ctx := start(t, Config{Dir: t.TempDir()})
	tctx, cancel := context.WithTimeout(ctx, 50*time.Second)
	defer cancel()
	alice, _ := d.Key("alice")
	bob, _ := d.Key("bob")
	appDir := node.AppDir(filepath.Join(d.Dir(), homeName(0)))
	backup := filepath.Join(t.TempDir(), "app")

	if err := d.Stop(0); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(backup, os.DirFS(appDir)); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, 0); err != nil {
		t.Fatal(err)
	}
	oldHeight := d.Height(0)
	c := client(t, d, 0)
	s := c.NewSender(alice)
	for i := 0; i < 5; i++ {
		if _, err := s.Submit(tctx, tx.Send{To: bob.Address, Amount: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	wantBob, err := c.Account(tctx, bob.Address)
	if err != nil {
		t.Fatal(err)
	}
	hNew, hashNew, err := d.AppCommit(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(0); err != nil {
		t.Fatal(err)
	}
	if hNew < oldHeight+5 {
		t.Fatalf("only %d blocks since the backup", hNew-oldHeight)
	}

	// Roll the app store back and restart: CometBFT replays the blocks.
	if err := os.RemoveAll(appDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(appDir, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// The handshake ran before the node started: no block could have come
	// from anywhere else.
	if h := d.Height(0); h < hNew {
		t.Fatalf("after restart the app is at height %d, want ≥ %d (handshake replay)", h, hNew)
	}
	got, err := client(t, d, 0).Account(tctx, bob.Address)
	if err != nil {
		t.Fatal(err)
	}
	if got.Balance != wantBob.Balance {
		t.Errorf("bob balance after replay %d, want %d", got.Balance, wantBob.Balance)
	}
	hash, err := headerAppHash(tctx, d, 0, hNew+1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hash, hashNew) {
		t.Errorf("app hash after block %d: %X after replay, %X before", hNew, hash, hashNew)
	}
}
