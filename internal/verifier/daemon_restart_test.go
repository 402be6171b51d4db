package verifier_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

var errKilled = errors.New("killed")

// killChain is a memAccount whose process "dies" once kill picks a
// transaction: that transaction lands, the caller sees an error (as after a
// kill -9 the reply never arrives), and nothing is sent after it.
type killChain struct {
	*memAccount
	kill   func(msg any) bool
	killed bool
}

func (c *killChain) Submit(ctx context.Context, msgs ...any) error {
	if c.killed {
		return errKilled
	}
	if err := c.memAccount.Submit(ctx, msgs...); err != nil {
		return err
	}
	for _, m := range msgs {
		if c.kill != nil && c.kill(m) {
			c.killed = true
			return errKilled
		}
	}
	return nil
}

// TestDaemonRestart kills the daemon in epoch 2, after it shopped and
// audited, at several points (between ticks; with its weights commitment
// in flight; with the next epoch's seed commitment in flight; in epoch 3
// with its anchor of epoch 2 in flight), and starts a
// new daemon on the same state directory with other randomness. The new
// daemon must still reveal the epoch's seed and weights and report its
// audits: the ledger then counts the verifier as revealing and
// audit-compliant for epoch 2, binds its 3 shopper receipts and the
// provider's passed audits. Restarting on an empty state directory (the
// state of an in-memory daemon) loses all of that, which the last case
// checks, so the test can tell.
func TestDaemonRestart(t *testing.T) {
	const shops = 3
	cases := []struct {
		name    string
		kill    func(msg any) bool
		lost    bool // restart on an empty state directory
		afterWs bool // kill once the weights are committed
	}{
		{name: "between ticks", afterWs: true},
		{name: "weights commitment in flight", kill: func(m any) bool { c, ok := m.(tx.CommitWeights); return ok && c.Epoch == 2 }},
		{name: "seed commitment in flight", kill: func(m any) bool { c, ok := m.(tx.CommitAuditSeed); return ok && c.Epoch == 3 }},
		{name: "anchor in flight", kill: func(m any) bool { a, ok := m.(tx.AnchorReceipts); return ok && a.Epoch == 2 }},
		{name: "state lost", afterWs: true, lost: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m, shop := memSetup(t, map[string]cheat.Strategy{"honest": cheat.Honest})
			prov := m.account("honest").addr
			dir := t.TempDir()
			acct := m.account("v1")
			start := func(c verifier.Chain, dir string, seed byte) *verifier.Verifier {
				v, err := verifier.New(verifier.Config{Address: acct.addr, Stake: 5_000_000, EvidenceBond: 1_000_000, RecheckAll: true,
					AuditFloorBps: 500, AuditCleanEpochs: 3, StateDir: dir, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))},
					c, shop, labCheckers{shop.lab}, rand.NewChaCha8([32]byte{seed}))
				if err != nil {
					t.Fatal(err)
				}
				rctx, cancel := context.WithCancel(ctx)
				cancel()
				if err := v.Run(rctx); err != nil {
					t.Fatal(err)
				}
				return v
			}
			kc := &killChain{memAccount: acct, kill: tc.kill}
			v := start(kc, dir, 1)
			restarted := false
			restart := func() {
				t.Helper()
				if restarted {
					t.Fatal("killed twice")
				}
				restarted = true
				d := dir
				if tc.lost {
					d = t.TempDir()
				}
				t.Logf("restart at height %d (epoch %d)", m.epoch().Height, m.epoch().Number)
				v = start(acct, d, 9)
			}
			// The ledger drops an epoch's seeds once it paid the epoch: the
			// reveals are collected as they come.
			revealed := map[uint64]bool{}
			collect := func() {
				var seeds []ledger.AuditSeed
				if err := m.query("audit-seeds", nil, &seeds); err != nil {
					t.Fatal(err)
				}
				for _, s := range seeds {
					if s.Verifier == acct.addr && s.Seed != "" {
						revealed[s.Epoch] = true
					}
				}
			}
			shopped := 0
			for m.epoch().Number < 4 || m.epoch().Height == m.epoch().LastHeight {
				ep := m.epoch()
				_ = v.Tick(ctx) // refusals (a missed seed window) are expected
				if kc.killed && !restarted {
					restart()
					_ = v.Tick(ctx)
				}
				if ep.Number == 2 && shopped < shops {
					for ; shopped < shops; shopped++ {
						if err := v.ShopOnce(ctx); err != nil {
							t.Fatalf("shop: %v", err)
						}
					}
				}
				length := ep.NextEpochHeight - ep.LastHeight
				if tc.afterWs && !restarted && ep.Number == 2 && ep.Height-ep.LastHeight > length/2 {
					restart()
				}
				collect()
				m.advance(1)
			}
			collect()
			if !restarted {
				t.Fatal("the daemon was never killed")
			}
			if shopped != shops {
				t.Fatalf("shopped %d, want %d", shopped, shops)
			}

			var anchors []ledger.Anchor
			if err := m.query("anchors/"+acct.addr, nil, &anchors); err != nil {
				t.Fatal(err)
			}
			var anchored uint64
			for _, a := range anchors {
				if a.Epoch == 2 {
					anchored = a.Count
				}
			}
			var rec ledger.RewardRecord
			if err := m.query("rewards/2", nil, &rec); err != nil {
				t.Fatal(err)
			}
			var vr ledger.VerifierReward
			for _, r := range rec.Verifiers {
				if r.Verifier == acct.addr {
					vr = r
				}
			}
			passed := m.reputation(prov).AuditsPassed
			t.Logf("seeds revealed %v, epoch-2 anchor count %d, reward %+v, provider audits passed %d", revealed, anchored, vr, passed)

			ok := revealed[2] && revealed[3] && anchored == shops && vr.Stake > 0 && vr.Eligible && passed >= shops
			if tc.lost {
				if ok || revealed[2] || anchored != 0 || vr.Trust != 0 {
					t.Errorf("a daemon without its state revealed or reported epoch 2: the test cannot tell")
				}
				return
			}
			if !revealed[2] || !revealed[3] {
				t.Errorf("seeds revealed for epochs %v, want 2 and 3", revealed)
			}
			if anchored != shops {
				t.Errorf("epoch 2 anchor binds %d receipts, want %d", anchored, shops)
			}
			if vr.Stake == 0 || !vr.Eligible || vr.Trust == 0 {
				t.Errorf("epoch 2 reward record of the verifier %+v: want its weights (scoring the audited provider) revealed and it eligible", vr)
			}
			if passed < shops {
				t.Errorf("provider audits passed %d, want ≥ %d", passed, shops)
			}
		})
	}
}
