package devnet

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"

	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/node"
)

// NetworkConfig describes the homes of a new network (a devnet or the
// output of `mycel testnet`).
type NetworkConfig struct {
	Homes   []string // one CometBFT home per validator
	ChainID string
	Genesis ledger.Genesis
	// Ports, if set, gives each validator's p2p and RPC ports (and makes
	// the validators peers of each other); otherwise ports are chosen at
	// run time.
	Ports [][2]int
	// Fast applies node.Fast (short timeouts for 127.0.0.1).
	Fast, EmptyBlocks bool
	// Moniker prefix; "node" if empty.
	Moniker string
}

// InitNetwork writes config, keys and one shared genesis into every home
// and returns the validators' p2p IDs.
func InitNetwork(nc NetworkConfig) ([]string, error) {
	if err := nc.Genesis.Validate(); err != nil {
		return nil, err
	}
	appState, err := json.Marshal(nc.Genesis)
	if err != nil {
		return nil, fmt.Errorf("init network: %w", err)
	}
	moniker := nc.Moniker
	if moniker == "" {
		moniker = "node"
	}
	cfgs := make([]*cmtcfg.Config, len(nc.Homes))
	ids := make([]string, len(nc.Homes))
	vals := make([]node.Validator, len(nc.Homes))
	for i, home := range nc.Homes {
		c := node.DefaultConfig(home)
		c.Moniker = fmt.Sprintf("%s%d", moniker, i)
		if nc.Fast {
			node.Fast(c, nc.EmptyBlocks)
		}
		c.P2P.AllowDuplicateIP = true
		c.P2P.AddrBookStrict = false
		pub, id, err := node.InitFiles(c)
		if err != nil {
			return nil, fmt.Errorf("init network: %w", err)
		}
		cfgs[i], ids[i] = c, string(id)
		vals[i] = node.Validator{Name: c.Moniker, PubKey: pub}
	}
	doc, err := node.Genesis(nc.ChainID, time.Now(), vals, appState)
	if err != nil {
		return nil, fmt.Errorf("init network: %w", err)
	}
	for i, c := range cfgs {
		if nc.Ports != nil {
			node.Listen(c, nc.Ports[i][0], nc.Ports[i][1])
			var peers []string
			for j := range cfgs {
				if j != i {
					peers = append(peers, fmt.Sprintf("%s@127.0.0.1:%d", ids[j], nc.Ports[j][0]))
				}
			}
			c.P2P.PersistentPeers = strings.Join(peers, ",")
		}
		if err := node.WriteConfig(c); err != nil {
			return nil, fmt.Errorf("init network: %w", err)
		}
		if err := node.WriteGenesis(c, doc); err != nil {
			return nil, fmt.Errorf("init network: %w", err)
		}
	}
	return ids, nil
}

func nodeID(c *cmtcfg.Config) (string, error) {
	k, err := p2p.LoadNodeKey(c.NodeKeyFile())
	if err != nil {
		return "", fmt.Errorf("devnet: load node key %s: %w", filepath.Dir(c.NodeKeyFile()), err)
	}
	return string(k.ID()), nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
