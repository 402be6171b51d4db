package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/tx"
)

// allTxCommands is txCommands plus the verification, incentive and anchor messages.
func allTxCommands() map[string]txCommand {
	cmds := txCommands()
	maps.Copy(cmds, txExtCommands())
	return cmds
}

// readJSONArg decodes v strictly from s: inline JSON, or @FILE to read a file.
func readJSONArg(s string, v any) error {
	data := []byte(s)
	if strings.HasPrefix(s, "@") {
		b, err := os.ReadFile(s[1:])
		if err != nil {
			return err
		}
		data = b
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// indexList parses "0,3,5" into ascending leaf indices.
func indexList(s string) ([]uint32, error) {
	out := []uint32{}
	if s == "" {
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("index %q: %w", f, err)
		}
		out = append(out, uint32(v))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// seedHex checks a 32-byte hex audit seed.
func seedHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != tx.AuditSeedBytes {
		return nil, fmt.Errorf("--seed must be %d bytes of hex", tx.AuditSeedBytes)
	}
	return b, nil
}

// weightList parses --weight PROVIDER:W values (addresses or key names) into a vector sorted
// by provider address.
func weightList(keysDir string, ws []string) ([]tx.ProviderWeight, error) {
	out := []tx.ProviderWeight{}
	for _, w := range ws {
		p, n, ok := strings.Cut(w, ":")
		if !ok {
			return nil, fmt.Errorf("--weight %q: want PROVIDER:WEIGHT", w)
		}
		addr, err := resolveAddress(keysDir, p)
		if err != nil {
			return nil, fmt.Errorf("--weight %q: %w", w, err)
		}
		v, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--weight %q: weight must be 0..%d", w, uint32(1<<32-1))
		}
		out = append(out, tx.ProviderWeight{Provider: addr, Weight: uint32(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out, nil
}

// tokensPerSecMilli parses a decimal tokens/s value ("12.5") into thousandths.
func tokensPerSecMilli(s string) (uint64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 3 || whole == "" {
		return 0, fmt.Errorf("--tokens-per-sec %q: want a number with at most 3 decimals", s)
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("--tokens-per-sec %q: %w", s, err)
	}
	var f uint64
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", 3-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("--tokens-per-sec %q: %w", s, err)
		}
	}
	if w > (1<<64-1-f)/1000 {
		return 0, fmt.Errorf("--tokens-per-sec %q: out of range", s)
	}
	return w*1000 + f, nil
}

// senderAddress resolves the --from flag of the tx command (registered on fs before the
// message's flags).
func senderAddress(fs *flag.FlagSet, keysDir string) (string, error) {
	f := fs.Lookup("from")
	if f == nil || f.Value.String() == "" {
		return "", fmt.Errorf("--from is required")
	}
	return resolveAddress(keysDir, f.Value.String())
}

func txExtCommands() map[string]txCommand {
	return map[string]txCommand{
		"anchor-receipts": {"anchor the Merkle root of your receipts for an epoch", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			epoch := uintFlag(fs, "epoch", "epoch of the receipts (current or previous)")
			root := fs.String("root", "", "hex receipts root (default with --leaves: the audit root)")
			count := uintFlag(fs, "count", "number of receipts (computed with --leaves)")
			leaves := fs.String("leaves", "", `the receipts' (provider, request id) in root order, as JSON [{"provider":…,"request_id":…},…] or @FILE: sets the audit root`)
			return func() (any, error) {
				m := tx.AnchorReceipts{Epoch: *epoch, Root: *root, Count: *count}
				if *leaves != "" {
					var ls []tx.AnchorLeaf
					if err := readJSONArg(*leaves, &ls); err != nil {
						return nil, fmt.Errorf("--leaves: %w", err)
					}
					m.AuditRoot, m.Count = tx.AnchorRoot(ls), uint64(len(ls))
					if m.Root == "" {
						m.Root = m.AuditRoot
					}
				}
				if m.Root == "" {
					return nil, fmt.Errorf("--root and --count, or --leaves, are required")
				}
				return m, nil
			}
		}},
		"commit-audit-seed": {"commit to sha256 of a secret audit seed for the current epoch (verifier)", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			epoch := uintFlag(fs, "epoch", "the current epoch")
			seed := fs.String("seed", "", "the secret seed, 32 bytes hex (keep it to reveal it next epoch)")
			return func() (any, error) {
				b, err := seedHex(*seed)
				if err != nil {
					return nil, err
				}
				return tx.CommitAuditSeed{Epoch: *epoch, Commitment: tx.AuditSeedCommitment(b)}, nil
			}
		}},
		"reveal-audit-seed": {"reveal the audit seed of the previous epoch (verifier)", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			epoch := uintFlag(fs, "epoch", "the previous epoch")
			seed := fs.String("seed", "", "the seed committed, 32 bytes hex")
			return func() (any, error) {
				if _, err := seedHex(*seed); err != nil {
					return nil, err
				}
				return tx.RevealAuditSeed{Epoch: *epoch, Seed: strings.ToLower(*seed)}, nil
			}
		}},
		"submit-audit-report": {"report which leaves of an anchored receipts root you audited (verifier)", func(fs *flag.FlagSet, keysDir func() string) func() (any, error) {
			epoch := uintFlag(fs, "epoch", "epoch of the anchor")
			anchor := fs.String("anchor", "", "address (or key name) that anchored the root")
			chunk := uintFlag(fs, "chunk", "chunk of the audit root (256 leaves each)")
			leaves := fs.String("leaves", "", "the chunk's leaves as JSON or @FILE (required unless already on the ledger)")
			var proof listFlag
			fs.Var(&proof, "proof", "the chunk's proof: hex sibling hashes, bottom-up (comma-separated)")
			all := fs.String("all-leaves", "", "all leaves of the audit root as JSON or @FILE: the chunk's leaves and proof are computed")
			audited := fs.String("audited", "", "indices of the audited leaves within the chunk, comma-separated")
			failed := fs.String("failed", "", "indices of audited leaves whose re-check failed")
			return func() (any, error) {
				addr, err := resolveAddress(keysDir(), *anchor)
				if err != nil {
					return nil, fmt.Errorf("--anchor: %w", err)
				}
				m := tx.SubmitAuditReport{Epoch: *epoch, Anchor: addr, Chunk: *chunk, Proof: []string(proof)}
				switch {
				case *all != "" && (*leaves != "" || len(proof) > 0):
					return nil, fmt.Errorf("--all-leaves excludes --leaves and --proof")
				case *all != "":
					var ls []tx.AnchorLeaf
					if err := readJSONArg(*all, &ls); err != nil {
						return nil, fmt.Errorf("--all-leaves: %w", err)
					}
					if *chunk >= tx.AnchorChunks(uint64(len(ls))) {
						return nil, fmt.Errorf("--chunk %d: %d leaves make %d chunks", *chunk, len(ls), tx.AnchorChunks(uint64(len(ls))))
					}
					m.Leaves = ls[*chunk*tx.AuditChunkLeaves : min(uint64(len(ls)), (*chunk+1)*tx.AuditChunkLeaves)]
					m.Proof = tx.AnchorChunkProof(ls, *chunk)
				case *leaves != "":
					if err := readJSONArg(*leaves, &m.Leaves); err != nil {
						return nil, fmt.Errorf("--leaves: %w", err)
					}
				}
				if m.Audited, err = indexList(*audited); err != nil {
					return nil, fmt.Errorf("--audited: %w", err)
				}
				if m.Failed, err = indexList(*failed); err != nil {
					return nil, fmt.Errorf("--failed: %w", err)
				}
				return m, nil
			}
		}},
		"submit-evidence": {"accuse a provider with its signed receipt and your re-check (verifier)", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			receipt := fs.String("receipt", "", "the provider-signed receipt as JSON or @FILE")
			var s tx.EvidenceSummary
			fs.StringVar(&s.Verdict, "verdict", "", "substitution|quantization|truncation|padding|inflated_tokens|tampered_prompt|mismatch")
			fs.Uint64Var(&s.PositionsChecked, "positions", 0, "token positions re-checked")
			fs.Uint64Var(&s.Mismatches, "mismatches", 0, "positions outside the tolerance band")
			fs.Uint64Var(&s.MaxLogprobDevMicro, "max-logprob-dev-micro", 0, "largest log-probability deviation in micro-nats")
			fs.Uint64Var(&s.ExpectedTokens, "expected-tokens", 0, "token count the re-check produced")
			fs.Uint64Var(&s.ClaimedTokens, "claimed-tokens", 0, "token count the receipt claims")
			bond := amount(fs, "bond", "bond locked until the vote ends (lost if the accusation is rejected)")
			return func() (any, error) {
				if err := required("bond", bond); err != nil {
					return nil, err
				}
				var r channel.Receipt
				if err := readJSONArg(*receipt, &r); err != nil {
					return nil, fmt.Errorf("--receipt: %w", err)
				}
				return tx.SubmitEvidence{Receipt: r, Summary: s, Bond: bond.v}, nil
			}
		}},
		"vote-evidence": {"vote on open evidence (verifier)", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			id := uintFlag(fs, "id", "evidence id")
			guilty := fs.Bool("guilty", false, "vote guilty (default: innocent)")
			return func() (any, error) { return tx.VoteEvidence{ID: *id, Guilty: *guilty}, nil }
		}},
		"commit-weights": {"commit to your weight vector over providers for the current epoch (verifier)", func(fs *flag.FlagSet, keysDir func() string) func() (any, error) {
			epoch := uintFlag(fs, "epoch", "the current epoch")
			var weights listFlag
			fs.Var(&weights, "weight", "PROVIDER:WEIGHT (address or key name, weight 0..2^32-1); repeatable")
			salt := fs.String("salt", "", "secret hex salt, 1..64 bytes (reveal it next epoch)")
			hash := fs.String("hash", "", "commit this precomputed hash instead (tx.WeightsCommitment)")
			return func() (any, error) {
				if *hash != "" {
					return tx.CommitWeights{Epoch: *epoch, Hash: *hash}, nil
				}
				ws, err := weightList(keysDir(), weights)
				if err != nil {
					return nil, err
				}
				sender, err := senderAddress(fs, keysDir())
				if err != nil {
					return nil, err
				}
				if *salt == "" {
					return nil, fmt.Errorf("--salt is required")
				}
				return tx.CommitWeights{Epoch: *epoch, Hash: tx.WeightsCommitment(*epoch, sender, ws, *salt)}, nil
			}
		}},
		"reveal-weights": {"reveal the weight vector committed in the previous epoch (verifier)", func(fs *flag.FlagSet, keysDir func() string) func() (any, error) {
			epoch := uintFlag(fs, "epoch", "the previous epoch")
			var weights listFlag
			fs.Var(&weights, "weight", "PROVIDER:WEIGHT as committed; repeatable")
			salt := fs.String("salt", "", "the salt committed")
			return func() (any, error) {
				ws, err := weightList(keysDir(), weights)
				if err != nil {
					return nil, err
				}
				return tx.RevealWeights{Epoch: *epoch, Weights: ws, Salt: *salt}, nil
			}
		}},
		"record-capacity": {"record a provider's measured throughput on a model (verifier)", func(fs *flag.FlagSet, keysDir func() string) func() (any, error) {
			prov := fs.String("provider", "", "provider address (or key name)")
			model := fs.String("model", "", "model id")
			tps := fs.String("tokens-per-sec", "", "measured tokens per second, up to 3 decimals")
			epoch := uintFlag(fs, "epoch", "the current epoch")
			return func() (any, error) {
				addr, err := resolveAddress(keysDir(), *prov)
				if err != nil {
					return nil, fmt.Errorf("--provider: %w", err)
				}
				milli, err := tokensPerSecMilli(*tps)
				if err != nil {
					return nil, err
				}
				return tx.RecordCapacity{Provider: addr, ModelID: *model, TokensPerSecMilli: milli, Epoch: *epoch}, nil
			}
		}},
	}
}
