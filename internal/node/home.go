package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"
)

// Validator is one validator of a genesis: its CometBFT public key and name.
type Validator struct {
	Name   string
	PubKey ed25519.PubKey
	Power  int64
}

// InitFiles creates the directories, the validator key (priv_validator_key.json,
// with an empty sign state) and the node key (node_key.json) of cfg.RootDir,
// keeping any that already exist, and writes config.toml. It returns the
// validator's public key and the node's p2p ID.
func InitFiles(cfg *cmtcfg.Config) (ed25519.PubKey, p2p.ID, error) {
	for _, dir := range []string{"config", "data"} {
		if err := os.MkdirAll(filepath.Join(cfg.RootDir, dir), 0o700); err != nil {
			return nil, "", fmt.Errorf("init home: %w", err)
		}
	}
	if _, err := os.Stat(cfg.PrivValidatorKeyFile()); errors.Is(err, fs.ErrNotExist) {
		pv := privval.GenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile())
		if err := savePV(pv); err != nil {
			return nil, "", err
		}
	}
	pv, err := LoadPrivValidator(cfg)
	if err != nil {
		return nil, "", err
	}
	nodeKey, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
	if err != nil {
		return nil, "", fmt.Errorf("init node key: %w", err)
	}
	if err := WriteConfig(cfg); err != nil {
		return nil, "", err
	}
	pub, ok := pv.Key.PubKey.(ed25519.PubKey)
	if !ok {
		return nil, "", fmt.Errorf("validator key is %s, want ed25519", pv.Key.PubKey.Type())
	}
	return pub, nodeKey.ID(), nil
}

func savePV(pv *privval.FilePV) (err error) {
	defer func() { // FilePV.Save panics on I/O errors
		if r := recover(); r != nil {
			err = fmt.Errorf("save validator key: %v", r)
		}
	}()
	pv.Save()
	return nil
}

// LoadPrivValidator reads the validator key and its last-sign state. Unlike
// privval.LoadFilePV it returns errors instead of exiting the process. A
// missing state file means nothing was signed yet.
func LoadPrivValidator(cfg *cmtcfg.Config) (*privval.FilePV, error) {
	keyJSON, err := os.ReadFile(cfg.PrivValidatorKeyFile())
	if err != nil {
		return nil, fmt.Errorf("load validator key: %w", err)
	}
	var key privval.FilePVKey
	if err := cmtjson.Unmarshal(keyJSON, &key); err != nil {
		return nil, fmt.Errorf("load validator key %s: %w", cfg.PrivValidatorKeyFile(), err)
	}
	if key.PrivKey == nil {
		return nil, fmt.Errorf("load validator key %s: no private key", cfg.PrivValidatorKeyFile())
	}
	pv := privval.NewFilePV(key.PrivKey, cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile())
	stateJSON, err := os.ReadFile(cfg.PrivValidatorStateFile())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := savePV(pv); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("load validator state: %w", err)
	default:
		var st privval.FilePVLastSignState
		if err := cmtjson.Unmarshal(stateJSON, &st); err != nil {
			return nil, fmt.Errorf("load validator state %s: %w", cfg.PrivValidatorStateFile(), err)
		}
		pv.LastSignState.Height = st.Height
		pv.LastSignState.Round = st.Round
		pv.LastSignState.Step = st.Step
		pv.LastSignState.Signature = st.Signature
		pv.LastSignState.SignBytes = st.SignBytes
	}
	return pv, nil
}

// Genesis builds a genesis document for chainID with the given validators
// and application state (the ledger genesis as JSON). Block limits are
// raised for throughput: 8 MiB blocks, no gas limit.
func Genesis(chainID string, genesisTime time.Time, vals []Validator, appState json.RawMessage) (*cmttypes.GenesisDoc, error) {
	params := cmttypes.DefaultConsensusParams()
	params.Block.MaxBytes = 8 << 20
	params.Block.MaxGas = -1
	doc := &cmttypes.GenesisDoc{
		GenesisTime:     genesisTime.UTC().Truncate(time.Millisecond),
		ChainID:         chainID,
		InitialHeight:   1,
		ConsensusParams: params,
		AppState:        appState,
	}
	for _, v := range vals {
		power := v.Power
		if power == 0 {
			power = 10
		}
		doc.Validators = append(doc.Validators, cmttypes.GenesisValidator{
			Address: v.PubKey.Address(), PubKey: v.PubKey, Power: power, Name: v.Name,
		})
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	return doc, nil
}

// WriteGenesis saves doc as cfg's genesis.json.
func WriteGenesis(cfg *cmtcfg.Config, doc *cmttypes.GenesisDoc) error {
	if err := doc.SaveAs(cfg.GenesisFile()); err != nil {
		return fmt.Errorf("write genesis: %w", err)
	}
	return nil
}

// ReadGenesis loads cfg's genesis.json.
func ReadGenesis(cfg *cmtcfg.Config) (*cmttypes.GenesisDoc, error) {
	doc, err := cmttypes.GenesisDocFromFile(cfg.GenesisFile())
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	return doc, nil
}
