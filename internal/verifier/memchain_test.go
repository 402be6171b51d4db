package verifier_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
)

const memChainID = "mycel-mem"

// memLedger is an in-memory ledger producing one block per submitted
// transaction (and per advance), with the supply invariant checked after
// every block.
type memLedger struct {
	t      testing.TB
	mu     sync.Mutex
	l      *ledger.Ledger
	nonces map[string]uint64
	when   time.Time
}

func memKey(name string) (string, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("verifier-test/" + name))
	k := ed25519.NewKeyFromSeed(seed[:])
	return address.FromPubKey(k.Public().(ed25519.PublicKey)), k
}

func newMemLedger(t testing.TB, p ledger.Params, models []tx.RegisterModel, funded ...string) *memLedger {
	t.Helper()
	g := ledger.Genesis{Params: p, Models: models}
	for _, n := range funded {
		a, _ := memKey(n)
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: a, Balance: 1_000_000_000})
	}
	l := ledger.New(memChainID)
	if err := l.InitChain(ledger.Header{Height: 1, ChainID: memChainID}, g); err != nil {
		t.Fatal(err)
	}
	l.Commit()
	return &memLedger{t: t, l: l, nonces: map[string]uint64{}, when: time.Unix(1_700_000_000, 0)}
}

// block runs one block with raws; it returns each transaction's result.
func (m *memLedger) block(raws ...[]byte) []ledger.Result {
	m.when = m.when.Add(time.Second)
	if err := m.l.BeginBlock(ledger.Header{Height: m.l.Height() + 1, Time: m.when, ChainID: memChainID}); err != nil {
		m.t.Fatal(err)
	}
	var out []ledger.Result
	for _, r := range raws {
		out = append(out, m.l.DeliverTx(r))
	}
	m.l.EndBlock()
	m.l.Commit()
	if err := m.l.CheckInvariants(); err != nil {
		m.t.Fatalf("height %d: %v", m.l.Height(), err)
	}
	return out
}

// advance runs n empty blocks.
func (m *memLedger) advance(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		m.block()
	}
}

func (m *memLedger) query(path string, data []byte, v any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.l.Query(path, data)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (m *memLedger) epoch() ledger.EpochView {
	var e ledger.EpochView
	if err := m.query("epoch", nil, &e); err != nil {
		m.t.Fatal(err)
	}
	return e
}

func (m *memLedger) reputation(addr string) ledger.Reputation {
	var r ledger.Reputation
	if err := m.query("reputation/"+addr, nil, &r); err != nil {
		m.t.Fatal(err)
	}
	return r
}

// account returns a Chain acting as the named account.
func (m *memLedger) account(name string) *memAccount {
	a, k := memKey(name)
	return &memAccount{m: m, addr: a, key: k}
}

// memAccount implements verifier.Chain over a memLedger.
type memAccount struct {
	m    *memLedger
	addr string
	key  ed25519.PrivateKey
}

func (c *memAccount) Epoch(context.Context) (ledger.EpochView, error) {
	var e ledger.EpochView
	return e, c.m.query("epoch", nil, &e)
}

func (c *memAccount) Providers(context.Context) ([]ledger.ProviderView, error) {
	var ps []ledger.ProviderView
	return ps, c.m.query("providers", nil, &ps)
}

func (c *memAccount) ModelSHA256(_ context.Context, id string) (string, error) {
	var md ledger.Model
	return md.SHA256, c.m.query("model/"+id, nil, &md)
}

func (c *memAccount) Evidence(context.Context) ([]ledger.Evidence, error) {
	var evs, open []ledger.Evidence
	if err := c.m.query("evidence", nil, &evs); err != nil {
		return nil, err
	}
	for _, e := range evs {
		if e.Status == ledger.EvidenceOpen {
			open = append(open, e)
		}
	}
	return open, nil
}

func (c *memAccount) Registered(context.Context) (bool, error) {
	var v ledger.VerifierView
	if err := c.m.query("verifier/"+c.addr, nil, &v); err != nil {
		return false, nil
	}
	return v.Address != "", nil
}

func (c *memAccount) Submit(_ context.Context, msgs ...any) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	b := tx.Body{ChainID: memChainID, Sender: c.addr, Nonce: c.m.nonces[c.addr], Fee: c.m.l.Params().MinFee}
	for _, x := range msgs {
		msg, err := tx.NewMsg(x.(interface{ Type() string }))
		if err != nil {
			return err
		}
		b.Msgs = append(b.Msgs, msg)
	}
	t, err := tx.Sign(b, c.key)
	if err != nil {
		return err
	}
	raw, err := tx.Encode(t)
	if err != nil {
		return err
	}
	r := c.m.block(raw)[0]
	if r.Code != 0 {
		return fmt.Errorf("%w: tx %T…: code %d: %s", verifier.ErrRefused, msgs[0], r.Code, r.Log)
	}
	c.m.nonces[c.addr]++
	return nil
}

// memParams are small ledger parameters for daemon tests.
func memParams() ledger.Params {
	p := ledger.DefaultParams()
	p.EpochLength = 20
	p.MinProviderStake = 1_000_000
	p.MinVerifierStake = 1_000_000
	p.EvidenceMinBond = 1_000_000
	p.EvidenceVoteBlocks = 30
	p.AuditCleanEpochs = 3
	p.AuditFloorBps = 500
	return p
}

func u64s(v uint64) string { return fmt.Sprint(v) }
