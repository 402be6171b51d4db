package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
)

// ConfigFile is the gateway's configuration file in its home directory.
const ConfigFile = "gateway.toml"

// LoadConfig reads DIR/gateway.toml over DefaultConfig. A missing file gives the defaults;
// unknown keys are an error. It does not validate.
func LoadConfig(dir string) (Config, error) {
	cfg := DefaultConfig()
	path := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("load gateway config: %w", err)
	}
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("load gateway config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return cfg, fmt.Errorf("load gateway config %s: unknown keys %v", path, und)
	}
	return cfg, nil
}

// Encode returns the config as TOML (what `mycel config dump --role gateway` prints).
func (c Config) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := toml.NewEncoder(&b)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode gateway config: %w", err)
	}
	return b.Bytes(), nil
}
