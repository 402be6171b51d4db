package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/node"
	"github.com/mycel-network/mycel/internal/tx"
)

// nodeProcess is `mycel node` running as a child process.
type nodeProcess struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startNode(t *testing.T, bin, home string) *nodeProcess {
	t.Helper()
	cmd := exec.Command(bin, "node", "--home", home, "--log-level", "warn")
	p := &nodeProcess{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitReady waits until the node answers RPC with a committed height ≥ min.
func waitReady(t *testing.T, ctx context.Context, c *chainclient.Client, p *nodeProcess, min int64) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := c.RPC().Status(ctx); err == nil && st.SyncInfo.LatestBlockHeight >= min {
			return st.SyncInfo.LatestBlockHeight
		}
		select {
		case err := <-p.done:
			t.Fatalf("node exited: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready at height %d after 30 s\n%s", min, p.stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling a separate process: nothing to wait on
	}
}

// TestNodeCrashRecovery runs `mycel node` as a subprocess, loads it with
// transactions, kills it with SIGKILL mid-load, restarts it and checks that
// the chain resumed at (at least) the height it had, with the same app hash
// there, and that every acknowledged transaction, and nothing else, is in
// the state.
func TestNodeCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mycel and runs a node process; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mycel")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ports, err := node.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	senders := []string{"alice", "carol"}
	args := []string{"init", "--home", home, "--chain-id", "crash-test", "--fast",
		"--p2p-laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]),
		"--rpc-laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]),
		"--fund", "bob=1myc"}
	for _, s := range senders {
		args = append(args, "--fund", s+"=1000myc")
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("mycel init: %v\n%s", err, out)
	}
	bob, err := keys.Load(filepath.Join(home, "keys"), "bob")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := chainclient.Dial(fmt.Sprintf("http://127.0.0.1:%d", ports[1]), chainclient.WithCommitTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	p := startNode(t, bin, home)
	waitReady(t, ctx, c, p, 1)

	// Load: each sender pipelines Sends to bob; tx with nonce n sends n+1 umyc.
	// A transaction is acknowledged once Wait saw it committed.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var mu sync.Mutex
	acked := map[string][]uint64{} // sender → acknowledged nonces
	var wg sync.WaitGroup
	for _, name := range senders {
		k, err := keys.Load(filepath.Join(home, "keys"), name)
		if err != nil {
			t.Fatal(err)
		}
		hashes := make(chan struct {
			hash  []byte
			nonce uint64
		}, 1000)
		wg.Add(2)
		go func() { // broadcaster
			defer wg.Done()
			defer close(hashes)
			for nonce := uint64(0); loadCtx.Err() == nil; nonce++ {
				raw, err := c.Sign(loadCtx, k, nonce, "", tx.Send{To: bob.Address, Amount: nonce + 1})
				if err != nil {
					return
				}
				h, err := c.Broadcast(loadCtx, raw)
				if err != nil {
					return // the node is gone
				}
				hashes <- struct {
					hash  []byte
					nonce uint64
				}{h, nonce}
			}
		}()
		go func() { // acknowledger: waits for up to 32 transactions at once
			defer wg.Done()
			sem := make(chan struct{}, 32)
			var waits sync.WaitGroup
			for h := range hashes {
				sem <- struct{}{}
				waits.Add(1)
				go func() {
					defer func() { <-sem; waits.Done() }()
					if _, err := c.Wait(loadCtx, h.hash); err != nil {
						return
					}
					mu.Lock()
					acked[name] = append(acked[name], h.nonce)
					mu.Unlock()
				}()
			}
			waits.Wait()
		}()
	}

	// Let the load run until a few blocks with transactions committed, then
	// note the app's height and hash and kill the node mid-load.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked["alice"]) + len(acked["carol"])
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d transactions acknowledged after 20 s\n%s", n, p.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling counters the load goroutines update
	}
	before, err := c.RPC().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hBefore := before.SyncInfo.LatestBlockHeight
	hashBefore := before.SyncInfo.LatestAppHash
	if err := p.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-p.done
	stopLoad()
	wg.Wait()

	// Restart: the chain resumes and goes on.
	p2 := startNode(t, bin, home)
	hAfter := waitReady(t, ctx, c, p2, hBefore+2)
	if hAfter < hBefore {
		t.Fatalf("height after restart %d < %d before", hAfter, hBefore)
	}
	// LatestAppHash at height h is the app hash after block h-1 (it is in
	// block h's header); compare the same header after the restart.
	rpc, err := rpchttp.New(fmt.Sprintf("http://127.0.0.1:%d", ports[1]), "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := rpc.Header(ctx, &hBefore)
	if err != nil {
		t.Fatal(err)
	}
	after := []byte(hdr.Header.AppHash)
	if !bytes.Equal(after, hashBefore) {
		t.Errorf("app hash in block %d: %X after restart, %X before", hBefore, after, hashBefore)
	}

	// Every acknowledged tx is in the state, and nothing more: nonces are
	// consecutive, so N committed txs from a sender are nonces 0..N-1, and
	// bob received exactly their amounts.
	want := uint64(1_000_000) // bob's genesis balance
	for _, name := range senders {
		k, _ := keys.Load(filepath.Join(home, "keys"), name)
		acc, err := c.Account(ctx, k.Address)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		nAcked := len(acked[name])
		for _, n := range acked[name] {
			if n >= acc.Nonce {
				t.Errorf("%s: acknowledged tx with nonce %d lost (account nonce %d after restart)", name, n, acc.Nonce)
			}
		}
		mu.Unlock()
		t.Logf("%s: %d acknowledged, %d committed", name, nAcked, acc.Nonce)
		want += acc.Nonce * (acc.Nonce + 1) / 2
	}
	got, err := c.Account(ctx, bob.Address)
	if err != nil {
		t.Fatal(err)
	}
	if got.Balance != want {
		t.Errorf("bob balance %d, want %d (genesis + the committed sends)", got.Balance, want)
	}
	p2.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p2.done:
		if err != nil {
			t.Errorf("node after SIGINT: %v\n%s", err, p2.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("node did not stop on SIGINT\n%s", p2.stderr)
	}
}
