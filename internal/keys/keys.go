// Package keys manages a keyring directory: one JSON file per ed25519 key at <dir>/<name>.json,
// file mode 0600 in a directory of mode 0700.
package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mycel-network/mycel/internal/address"
)

// Errors returned by this package; match them with errors.Is.
var (
	ErrExists      = errors.New("key already exists")
	ErrNotFound    = errors.New("key not found")
	ErrBadName     = errors.New("invalid key name")
	ErrPermissions = errors.New("key file permissions too open")
	ErrCorrupt     = errors.New("corrupt key file")
)

// Key is one named ed25519 key and its address.
type Key struct {
	Name    string
	Address string
	PrivKey ed25519.PrivateKey
}

// PubKey returns the public half of the key.
func (k Key) PubKey() ed25519.PublicKey {
	if len(k.PrivKey) != ed25519.PrivateKeySize {
		return nil
	}
	return k.PrivKey.Public().(ed25519.PublicKey)
}

// file is the on-disk JSON form of a key.
type file struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	PubKey  string `json:"pub_key"` // hex
	Seed    string `json:"seed"`    // hex of the 32-byte ed25519 seed
}

// ValidateName checks a key name: 1..64 characters from [a-z0-9_-].
func ValidateName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("key name %q: want 1..64 characters: %w", name, ErrBadName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("key name %q: character %q not in [a-z0-9_-]: %w", name, c, ErrBadName)
		}
	}
	return nil
}

// Add creates a new random key named name in dir. It fails if the name exists.
func Add(dir, name string) (Key, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return Key{}, fmt.Errorf("add key %s: %w", name, err)
	}
	return AddFromSeed(dir, name, seed)
}

// AddFromSeed creates the key derived from a 32-byte seed (devnet demo accounts). It fails if
// the name exists.
func AddFromSeed(dir, name string, seed []byte) (Key, error) {
	if err := ValidateName(name); err != nil {
		return Key{}, fmt.Errorf("add key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return Key{}, fmt.Errorf("add key %s: seed has %d bytes, want %d", name, len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	k := Key{Name: name, Address: address.FromPubKey(priv.Public().(ed25519.PublicKey)), PrivKey: priv}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, fmt.Errorf("add key %s: %w", name, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return Key{}, fmt.Errorf("add key %s: %w", name, err)
	}
	data, err := json.MarshalIndent(file{
		Name:    name,
		Address: k.Address,
		PubKey:  hex.EncodeToString(k.PubKey()),
		Seed:    hex.EncodeToString(seed),
	}, "", "  ")
	if err != nil {
		return Key{}, fmt.Errorf("add key %s: %w", name, err)
	}
	data = append(data, '\n')
	path := filepath.Join(dir, name+".json")
	// O_EXCL: two concurrent Adds of one name cannot both win, and nothing is overwritten.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Key{}, fmt.Errorf("add key %s: %w", name, ErrExists)
		}
		return Key{}, fmt.Errorf("add key %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return Key{}, fmt.Errorf("add key %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return Key{}, fmt.Errorf("add key %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return Key{}, fmt.Errorf("add key %s: %w", name, err)
	}
	return k, nil
}

// Load reads the key named name from dir. It refuses files readable or writable by group or
// others (mode wider than 0600) and files whose contents do not match their name.
func Load(dir, name string) (Key, error) {
	if err := ValidateName(name); err != nil {
		return Key{}, fmt.Errorf("load key: %w", err)
	}
	path := filepath.Join(dir, name+".json")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Key{}, fmt.Errorf("load key %s: %w", name, ErrNotFound)
		}
		return Key{}, fmt.Errorf("load key %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("load key %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return Key{}, fmt.Errorf("load key %s: %s is not a regular file: %w", name, path, ErrCorrupt)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return Key{}, fmt.Errorf("load key %s: %s has mode %#o, want 0600 (chmod 600 it): %w", name, path, perm, ErrPermissions)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return Key{}, fmt.Errorf("load key %s: %w", name, err)
	}
	var kf file
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return Key{}, fmt.Errorf("load key %s: %v: %w", name, err, ErrCorrupt)
	}
	seed, err := hex.DecodeString(kf.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return Key{}, fmt.Errorf("load key %s: seed is not 32 hex bytes: %w", name, ErrCorrupt)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	k := Key{Name: name, Address: address.FromPubKey(priv.Public().(ed25519.PublicKey)), PrivKey: priv}
	if kf.Name != name || kf.Address != k.Address || kf.PubKey != hex.EncodeToString(k.PubKey()) {
		return Key{}, fmt.Errorf("load key %s: name, address or public key do not match the seed: %w", name, ErrCorrupt)
	}
	return k, nil
}

// List loads every key in dir, sorted by name. A missing dir is an empty keyring.
func List(dir string) ([]Key, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		name := strings.TrimSuffix(n, ".json")
		if ValidateName(name) != nil {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	keys := make([]Key, 0, len(names))
	for _, name := range names {
		k, err := Load(dir, name)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Export returns the hex of the key's 32-byte seed, from which AddFromSeed recreates it.
func Export(k Key) string {
	if len(k.PrivKey) != ed25519.PrivateKeySize {
		return ""
	}
	return hex.EncodeToString(k.PrivKey.Seed())
}
