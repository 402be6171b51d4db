package verifier

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mycel-network/mycel/internal/tx"
)

// StateFile is the file in Config.StateDir holding what a restarted daemon
// needs to finish its epochs: the secret audit seeds it committed (to reveal
// them), its weight commitments (to reveal them), the shopper receipts of
// the epochs not yet reported and their audits (to anchor and report them),
// this epoch's tallies and its request counter (so a restart does not
// repeat the epoch's prompts).
const StateFile = "verifier-state.json"

// stateVersion is the layout of StateFile.
const stateVersion = 1

type persistState struct {
	Version   int                       `json:"version"`
	N         int                       `json:"n"`
	Seeds     map[uint64]persistSeed    `json:"seeds"`
	Started   map[uint64]bool           `json:"started"`
	Weights   map[uint64]persistWeights `json:"weights"`
	Tallies   map[string]*Tally         `json:"tallies"`
	Capacity  []string                  `json:"capacity"`
	Voted     []uint64                  `json:"voted"`
	Shopped   map[uint64][]persistLeaf  `json:"shopped"`
	Anchored  map[uint64]bool           `json:"anchored"`
	Reported  map[uint64]bool           `json:"reported"`
	ReportTry map[uint64]int            `json:"report_try"`
	Exact     map[string]bool           `json:"exact"`
}

// persistSeed is a secret audit seed. Committed is false while its
// commitment is in flight: a daemon restarted then re-sends the same
// commitment rather than a new seed's.
type persistSeed struct {
	Seed      string `json:"seed"`
	Committed bool   `json:"committed"`
}

// persistWeights is a weights commitment; Committed as for persistSeed.
type persistWeights struct {
	Weights   []tx.ProviderWeight `json:"weights"`
	Salt      string              `json:"salt"`
	Hash      string              `json:"hash"`
	Committed bool                `json:"committed"`
}

type persistLeaf struct {
	Provider  string `json:"provider"`
	RequestID string `json:"request_id"`
	Audited   bool   `json:"audited,omitempty"`
	Failed    bool   `json:"failed,omitempty"`
}

// snapshotLocked returns the state to persist; v.mu is held.
func (v *Verifier) snapshotLocked() persistState {
	s := persistState{Version: stateVersion, N: v.n, Seeds: map[uint64]persistSeed{}, Started: map[uint64]bool{},
		Weights: map[uint64]persistWeights{}, Tallies: v.tallies, Shopped: map[uint64][]persistLeaf{},
		Anchored: v.anchorOK, Reported: v.reported, ReportTry: v.reportTry, Exact: v.exact}
	for e, seed := range v.seeds {
		s.Seeds[e] = persistSeed{Seed: hex.EncodeToString(seed), Committed: v.committed[e]}
	}
	for e, ok := range v.started {
		// Only the epochs startEpoch has not pruned yet matter.
		if ok && e+1 >= v.epoch {
			s.Started[e] = true
		}
	}
	for e, wc := range v.weights {
		s.Weights[e] = persistWeights{Weights: wc.weights, Salt: wc.salt, Hash: wc.hash, Committed: wc.committed}
	}
	suffix := "/" + strconv.FormatUint(v.epoch, 10)
	for k := range v.capacity {
		if strings.HasSuffix(k, suffix) {
			s.Capacity = append(s.Capacity, k)
		}
	}
	for id := range v.voted {
		s.Voted = append(s.Voted, id)
	}
	for e, ls := range v.shopped {
		out := make([]persistLeaf, len(ls))
		for i, l := range ls {
			out[i] = persistLeaf{Provider: l.leaf.Provider, RequestID: l.leaf.RequestID, Audited: l.audited, Failed: l.failed}
		}
		s.Shopped[e] = out
	}
	return s
}

// save writes the daemon's state to Config.StateDir atomically (a temporary
// file, fsync, rename, fsync of the directory), so a daemon killed at any
// moment finds either the old or the new state. Without a StateDir it does
// nothing.
func (v *Verifier) save() error {
	if v.cfg.StateDir == "" {
		return nil
	}
	v.saveMu.Lock()
	defer v.saveMu.Unlock()
	v.mu.Lock()
	b, err := json.Marshal(v.snapshotLocked())
	v.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save verifier state: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(v.cfg.StateDir, StateFile), b); err != nil {
		return fmt.Errorf("save verifier state: %w", err)
	}
	return nil
}

// mustSave saves and logs a failure: the daemon keeps working from memory.
func (v *Verifier) mustSave() {
	if err := v.save(); err != nil {
		v.log.Error("verifier state not saved: a restart would lose it", "err", err)
	}
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// load reads the state a previous run saved, if any.
func (v *Verifier) load() error {
	if v.cfg.StateDir == "" {
		return nil
	}
	path := filepath.Join(v.cfg.StateDir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load verifier state: %w", err)
	}
	var s persistState
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("load verifier state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return fmt.Errorf("load verifier state %s: version %d, want %d", path, s.Version, stateVersion)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n = s.N
	for e, ps := range s.Seeds {
		seed, err := hex.DecodeString(ps.Seed)
		if err != nil || len(seed) == 0 {
			return fmt.Errorf("load verifier state %s: seed of epoch %d: bad hex", path, e)
		}
		v.seeds[e] = seed
		if ps.Committed {
			v.committed[e] = true
		} else {
			v.unsure[e] = true
		}
	}
	for e := range s.Started {
		v.started[e] = true
	}
	for e, w := range s.Weights {
		v.weights[e] = weightCommit{weights: w.Weights, salt: w.Salt, hash: w.Hash, committed: w.Committed}
	}
	for p, t := range s.Tallies {
		if t != nil {
			v.tallies[p] = t
		}
	}
	for _, k := range s.Capacity {
		v.capacity[k] = true
	}
	for _, id := range s.Voted {
		v.voted[id] = true
	}
	for e, ls := range s.Shopped {
		for _, l := range ls {
			v.shopped[e] = append(v.shopped[e], auditLeaf{leaf: tx.AnchorLeaf{Provider: l.Provider, RequestID: l.RequestID}, audited: l.Audited, failed: l.Failed})
		}
	}
	for e, ok := range s.Anchored {
		v.anchored[e], v.anchorOK[e] = ok, ok
	}
	for e, ok := range s.Reported {
		v.reported[e] = ok
	}
	for e, n := range s.ReportTry {
		v.reportTry[e] = n
	}
	for p, ok := range s.Exact {
		v.exact[p] = ok
	}
	v.log.Info("verifier state loaded", "path", path, "seeds", len(s.Seeds), "weights", len(s.Weights), "epochs_unreported", len(s.Shopped))
	return nil
}
