package node

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	cmtcfg "github.com/cometbft/cometbft/config"
)

// DefaultConfig returns CometBFT's default validator configuration rooted at
// home and tuned for Mycel: Prometheus off, a mempool large enough for the
// ledger benchmark, PEX off (peers are configured explicitly).
func DefaultConfig(home string) *cmtcfg.Config {
	cfg := cmtcfg.DefaultConfig()
	cfg.SetRoot(home)
	cfg.Moniker = "mycel"
	cfg.Instrumentation.Prometheus = false
	cfg.Mempool.Size = 100_000
	cfg.Mempool.CacheSize = 200_000
	cfg.Mempool.MaxTxsBytes = 1 << 30
	cfg.RPC.TimeoutBroadcastTxCommit = 30 * time.Second
	cfg.RPC.MaxSubscriptionClients = 200
	cfg.RPC.MaxOpenConnections = 2000
	cfg.TxIndex.Indexer = "kv"
	cfg.P2P.PexReactor = false
	return cfg
}

// Fast sets the short timeouts used by the devnet, tests and benchmarks
// on 127.0.0.1: ~100 ms blocks, quick p2p flushes, several nodes on one IP.
// With createEmptyBlocks false, a block is made only for transactions or
// once a second.
func Fast(cfg *cmtcfg.Config, createEmptyBlocks bool) {
	c := cfg.Consensus
	c.TimeoutPropose = 3 * time.Second
	c.TimeoutProposeDelta = 200 * time.Millisecond
	c.TimeoutPrevote = 200 * time.Millisecond
	c.TimeoutPrevoteDelta = 100 * time.Millisecond
	c.TimeoutPrecommit = 200 * time.Millisecond
	c.TimeoutPrecommitDelta = 100 * time.Millisecond
	c.TimeoutCommit = 100 * time.Millisecond
	c.PeerGossipSleepDuration = 10 * time.Millisecond
	c.CreateEmptyBlocks = createEmptyBlocks
	if !createEmptyBlocks {
		c.CreateEmptyBlocksInterval = time.Second
	}
	cfg.P2P.FlushThrottleTimeout = 10 * time.Millisecond
	// Loopback is fast: the 5 MB/s default would make a large block take
	// seconds to reach the other validators.
	cfg.P2P.SendRate = 200 << 20
	cfg.P2P.RecvRate = 200 << 20
	cfg.P2P.AllowDuplicateIP = true
	cfg.P2P.AddrBookStrict = false
	cfg.P2P.PexReactor = false
	cfg.P2P.PersistentPeersMaxDialPeriod = 2 * time.Second
}

// configFile is the path of config.toml under home.
func configFile(home string) string { return filepath.Join(home, "config", "config.toml") }

// WriteConfig writes cfg to <home>/config/config.toml in CometBFT's format.
func WriteConfig(cfg *cmtcfg.Config) (err error) {
	if err := os.MkdirAll(filepath.Join(cfg.RootDir, "config"), 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	// WriteConfigFile panics on I/O errors; turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write config: %v", r)
		}
	}()
	cmtcfg.WriteConfigFile(configFile(cfg.RootDir), cfg)
	return nil
}

// LoadConfig reads <home>/config/config.toml over DefaultConfig(home).
// Keys that are missing keep their defaults; unknown keys are ignored.
func LoadConfig(home string) (*cmtcfg.Config, error) {
	cfg := DefaultConfig(home)
	raw := map[string]any{}
	if _, err := toml.DecodeFile(configFile(home), &raw); err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	if err := decodeInto(reflect.ValueOf(cfg).Elem(), raw, ""); err != nil {
		return nil, fmt.Errorf("load config %s: %w", configFile(home), err)
	}
	cfg.SetRoot(home)
	if err := cfg.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return cfg, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// decodeInto sets the fields of the struct v from m, matching keys by the
// `mapstructure` tags CometBFT uses (the format viper reads).
func decodeInto(v reflect.Value, m map[string]any, path string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("mapstructure")
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if opts == "squash" {
			if err := decodeInto(fv, m, path); err != nil {
				return err
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		val, ok := m[name]
		if !ok {
			continue
		}
		key := path + name
		if fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Struct {
			sub, ok := val.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: want a table", key)
			}
			if fv.IsNil() {
				fv.Set(reflect.New(fv.Type().Elem()))
			}
			if err := decodeInto(fv.Elem(), sub, key+"."); err != nil {
				return err
			}
			continue
		}
		if err := setValue(fv, val); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

func setValue(fv reflect.Value, val any) error {
	if fv.Type() == durationType {
		switch x := val.(type) {
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return err
			}
			fv.SetInt(int64(d))
		case int64:
			fv.SetInt(x)
		default:
			return fmt.Errorf("want a duration, got %T", val)
		}
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		s, ok := val.(string)
		if !ok {
			return fmt.Errorf("want a string, got %T", val)
		}
		fv.SetString(s)
	case reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			return fmt.Errorf("want a boolean, got %T", val)
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := toInt(val)
		if err != nil {
			return err
		}
		if fv.OverflowInt(n) {
			return fmt.Errorf("%d out of range", n)
		}
		fv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := toInt(val)
		if err != nil || n < 0 {
			return fmt.Errorf("want a non-negative integer, got %v", val)
		}
		if fv.OverflowUint(uint64(n)) {
			return fmt.Errorf("%d out of range", n)
		}
		fv.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch x := val.(type) {
		case float64:
			fv.SetFloat(x)
		case int64:
			fv.SetFloat(float64(x))
		default:
			return fmt.Errorf("want a number, got %T", val)
		}
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return nil // no such fields in CometBFT's config today
		}
		var out []string
		switch x := val.(type) {
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("want strings, got %T", e)
				}
				out = append(out, s)
			}
		case string:
			if x != "" {
				out = strings.Split(x, ",")
			}
		default:
			return fmt.Errorf("want a list, got %T", val)
		}
		fv.Set(reflect.ValueOf(out))
	}
	return nil
}

// toInt accepts TOML integers and quoted integers (CometBFT's template
// quotes a few, such as statesync.chunk_fetchers).
func toInt(val any) (int64, error) {
	switch x := val.(type) {
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("want an integer, got %q", x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("want an integer, got %T", val)
}
