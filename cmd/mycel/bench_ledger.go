package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// ledgerBenchResult is the JSON form of `mycel bench ledger`.
type ledgerBenchResult struct {
	Benchmark     string  `json:"benchmark"`
	Validators    int     `json:"validators"`
	Accounts      int     `json:"accounts"`
	Txs           int     `json:"txs"`
	Accepted      int     `json:"accepted"`  // passed CheckTx
	Committed     int     `json:"committed"` // committed with code 0
	Failed        int     `json:"failed"`    // committed with a non-zero code
	Seconds       float64 `json:"seconds"`   // first broadcast → last commit
	TxPerSecond   float64 `json:"tx_per_second"`
	Blocks        int     `json:"blocks"`
	MaxBlockTxs   int     `json:"max_block_txs"`
	MeanBlockTxs  float64 `json:"mean_block_txs"`
	CPUSeconds    float64 `json:"cpu_seconds"`       // process CPU time (node and client) while measuring
	TxPerCPUSec   float64 `json:"tx_per_cpu_second"` // committed / cpu_seconds: throughput free of other load
	LoadAverage   string  `json:"load_average,omitempty"`
	SignSeconds   float64 `json:"sign_seconds"` // signing every tx up front (not timed above)
	TimeoutCommit string  `json:"timeout_commit"`
	TxIndex       string  `json:"tx_index"`
	CPUs          int     `json:"cpus"`
	GoVersion     string  `json:"go_version"`
}

func benchLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench ledger", stderr)
	validators := fs.Int("validators", 1, "in-process validators: 1 or 4")
	nTxs := fs.Int("txs", 20000, "signed Send transactions to commit")
	nAccounts := fs.Int("accounts", 200, "sending accounts (each broadcasts its txs in nonce order)")
	output := fs.String("output", "text", "text or json")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (node included) to this file")
	timeoutCommit := fs.Duration("timeout-commit", 100*time.Millisecond, "CometBFT timeout_commit")
	keep := fs.Bool("keep", false, "keep the devnet directory")
	verbose := fs.Bool("v", false, "print every block as it commits")
	txIndex := fs.String("tx-index", "null", "CometBFT tx indexer: null (as on a validator) or kv (the devnet default, needed by /tx?hash and tx_search)")
	cometLog := fs.Bool("comet-log", false, "print CometBFT's debug logs to stderr")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("bench ledger", pos); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("bench ledger: --output %q: want text or json", *output)
	}
	if *validators != 1 && *validators != 4 {
		return fmt.Errorf("bench ledger: --validators %d: want 1 or 4", *validators)
	}
	if *nTxs < 1 || *nAccounts < 1 || *nAccounts > *nTxs {
		return fmt.Errorf("bench ledger: want 1 ≤ --accounts ≤ --txs")
	}
	progress := func(format string, a ...any) {
		if *output == "text" {
			fmt.Fprintf(stderr, format+"\n", a...)
		}
	}

	dir, err := os.MkdirTemp("", "mycel-bench-ledger-")
	if err != nil {
		return fmt.Errorf("bench ledger: %w", err)
	}
	if *keep {
		progress("devnet directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	// Accounts with deterministic keys, funded at genesis.
	privs := make([]ed25519.PrivateKey, *nAccounts)
	addrs := make([]string, *nAccounts)
	for i := range privs {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		seed := sha256.Sum256(append([]byte("mycel-bench-ledger/"), b[:]...))
		privs[i] = ed25519.NewKeyFromSeed(seed[:])
		addrs[i] = address.FromPubKey(privs[i].Public().(ed25519.PublicKey))
	}
	params := ledger.DefaultParams()
	var comet *slog.Logger
	if *cometLog {
		comet = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := devnet.New(devnet.Config{
		CometLogger: comet,
		Dir:         dir, Validators: *validators, ChainID: "mycel-bench",
		Genesis: func(g *ledger.Genesis) error {
			for _, a := range addrs {
				g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: a, Balance: 1_000_000_000_000})
			}
			params = g.Params
			return nil
		},
		Tune: func(c *cmtcfg.Config) {
			c.Consensus.TimeoutCommit = *timeoutCommit
			c.TxIndex.Indexer = *txIndex
			c.Mempool.Size = *nTxs + 1000
			c.Mempool.CacheSize = 2 * (*nTxs + 1000)
		},
	})
	if err != nil {
		return fmt.Errorf("bench ledger: %w", err)
	}

	// Sign every transaction up front: account i sends its share in nonce
	// order to the next account.
	progress("signing %d Send transactions from %d accounts…", *nTxs, *nAccounts)
	signStart := time.Now()
	perAccount := make([][][]byte, *nAccounts)
	for k := 0; k < *nTxs; k++ {
		i := k % *nAccounts
		nonce := uint64(len(perAccount[i]))
		msg, err := tx.NewMsg(tx.Send{To: addrs[(i+1)%*nAccounts], Amount: 1})
		if err != nil {
			return err
		}
		t, err := tx.Sign(tx.Body{ChainID: d.ChainID(), Sender: addrs[i], Nonce: nonce, Fee: params.MinFee, Msgs: []tx.Msg{msg}}, privs[i])
		if err != nil {
			return err
		}
		raw, err := tx.Encode(t)
		if err != nil {
			return err
		}
		perAccount[i] = append(perAccount[i], raw)
	}
	signSeconds := time.Since(signStart).Seconds()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	stop := func() error {
		cancel()
		return <-done
	}
	wctx, wcancel := context.WithTimeout(runCtx, 60*time.Second)
	defer wcancel()
	for i := 0; i < *validators; i++ {
		if err := d.WaitHeight(wctx, i, 1); err != nil {
			stop()
			return fmt.Errorf("bench ledger: %w", err)
		}
	}
	clients := make([]*rpchttp.HTTP, *validators)
	for i := range clients {
		if clients[i], err = rpchttp.New(d.RPCAddrOf(i), "/websocket"); err != nil {
			stop()
			return fmt.Errorf("bench ledger: %w", err)
		}
	}
	startHeight := d.Height(0)
	// Follow blocks in-process, so that counting costs no JSON.
	local, err := d.Local(0)
	if err != nil {
		stop()
		return fmt.Errorf("bench ledger: %w", err)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			stop()
			return fmt.Errorf("bench ledger: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			stop()
			return fmt.Errorf("bench ledger: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	progress("broadcasting to %d validator(s)…", *validators)
	var accepted, rejected atomic.Int64
	var firstReject atomic.Value
	start := time.Now()
	cpuStart := processCPU()
	var wg sync.WaitGroup
	for i := range perAccount {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[i%len(clients)]
			for _, raw := range perAccount[i] {
				res, err := c.BroadcastTxSync(runCtx, raw)
				if err == nil && res.Code == 0 {
					accepted.Add(1)
					continue
				}
				rejected.Add(1)
				if err == nil {
					err = fmt.Errorf("%s (code %d): %s", ledger.CodeName(res.Code), res.Code, res.Log)
				}
				firstReject.CompareAndSwap(nil, err.Error())
				return // later nonces of this account cannot pass
			}
		}()
	}

	// Follow the chain: count committed txs per block until every accepted
	// tx is in a block (or the chain stalls).
	var committed, failed, blocks, maxBlock int
	var end time.Time
	h := startHeight
	broadcastDone := make(chan struct{})
	go func() { wg.Wait(); close(broadcastDone) }()
	allSent := false
	lastProgress := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if !allSent {
			select {
			case <-broadcastDone:
				allSent = true
			default:
			}
		}
		if allSent && int64(committed+failed) >= accepted.Load() {
			break
		}
		if time.Since(lastProgress) > 30*time.Second {
			stop()
			return fmt.Errorf("bench ledger: chain made no progress for 30 s at height %d (%d of %d committed)", h, committed, accepted.Load())
		}
		if d.Height(0) <= h {
			select {
			case <-tick.C:
				continue
			case <-ctx.Done():
				stop()
				return ctx.Err()
			}
		}
		h++
		res, err := local.BlockResults(runCtx, &h)
		if err != nil {
			stop()
			return fmt.Errorf("bench ledger: block results %d: %w", h, err)
		}
		n := len(res.TxsResults)
		if *verbose {
			progress("%8.3fs  height %d  %d txs  (accepted so far %d)", time.Since(start).Seconds(), h, n, accepted.Load())
		}
		if n > 0 {
			blocks++
			end = time.Now()
			lastProgress = end
			if n > maxBlock {
				maxBlock = n
			}
		}
		for _, r := range res.TxsResults {
			if r.Code == 0 {
				committed++
			} else {
				failed++
			}
		}
	}
	cpuUsed := processCPU() - cpuStart
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err := stop(); err != nil {
		return fmt.Errorf("bench ledger: %w", err)
	}
	if end.IsZero() {
		end = time.Now()
	}
	secs := end.Sub(start).Seconds()
	r := ledgerBenchResult{
		Benchmark: "ledger", Validators: *validators, Accounts: *nAccounts, Txs: *nTxs,
		Accepted: int(accepted.Load()), Committed: committed, Failed: failed, Seconds: secs,
		TxPerSecond: float64(committed) / secs, Blocks: blocks, MaxBlockTxs: maxBlock,
		SignSeconds: signSeconds, TimeoutCommit: timeoutCommit.String(), TxIndex: *txIndex,
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		CPUSeconds: cpuUsed.Seconds(), LoadAverage: loadAverage(),
	}
	if cpuUsed > 0 {
		r.TxPerCPUSec = float64(committed) / cpuUsed.Seconds()
	}
	if blocks > 0 {
		r.MeanBlockTxs = float64(committed+failed) / float64(blocks)
	}
	if v := firstReject.Load(); v != nil {
		progress("%d txs rejected by CheckTx, first: %s", rejected.Load(), v)
	}
	if *output == "json" {
		return writeJSON(stdout, r)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "validators\ttxs\tcommitted\tfailed\tseconds\ttx/s\tCPU s\ttx/CPU-s\tblocks\tmean txs/block\tmax txs/block\n")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.2f\t%.0f\t%.2f\t%.0f\t%d\t%.0f\t%d\n", r.Validators, r.Txs, r.Committed, r.Failed, r.Seconds, r.TxPerSecond, r.CPUSeconds, r.TxPerCPUSec, r.Blocks, r.MeanBlockTxs, r.MaxBlockTxs)
	tw.Flush()
	fmt.Fprintf(stdout, "(%d accounts, %d CPUs, load average %s, %s, timeout_commit %s, tx index %s; signing up front took %.2f s and is not counted;\n CPU s is this process's CPU time, node and client, while measuring)\n", r.Accounts, r.CPUs, r.LoadAverage, r.GoVersion, r.TimeoutCommit, r.TxIndex, r.SignSeconds)
	return nil
}

// loadAverage returns the 1-minute load average on Linux, else "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
