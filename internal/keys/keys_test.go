package keys

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/address"
)

func TestAddLoadList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keyring")
	bob, err := Add(dir, "bob")
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	seed[0] = 7
	alice, err := AddFromSeed(dir, "alice", seed)
	if err != nil {
		t.Fatal(err)
	}
	if alice.Address != address.FromPubKey(alice.PubKey()) {
		t.Errorf("alice address %s does not match her key", alice.Address)
	}
	again, err := AddFromSeed(t.TempDir(), "alice", seed)
	if err != nil {
		t.Fatal(err)
	}
	if again.Address != alice.Address {
		t.Errorf("AddFromSeed not deterministic: %s vs %s", again.Address, alice.Address)
	}
	if _, err := Add(dir, "alice"); !errors.Is(err, ErrExists) {
		t.Errorf("Add existing = %v, want ErrExists", err)
	}
	got, err := Load(dir, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bob, got); diff != "" {
		t.Errorf("Load(bob) (-want +got):\n%s", diff)
	}
	list, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range list {
		names = append(names, k.Name)
	}
	if diff := cmp.Diff([]string{"alice", "bob"}, names); diff != "" {
		t.Errorf("List names (-want +got):\n%s", diff)
	}
	if got := Export(alice); got != "0700000000000000000000000000000000000000000000000000000000000000" {
		t.Errorf("Export = %s", got)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "alice.json"): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %#o, want %#o", path, st.Mode().Perm(), want)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := Add(dir, "k"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "k.json")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, "k"); !errors.Is(err, ErrPermissions) {
		t.Errorf("Load 0644 = %v, want ErrPermissions", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"name":"k","seed":"00"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, "k"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Load corrupt = %v, want ErrCorrupt", err)
	}
	if _, err := Load(dir, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load missing = %v, want ErrNotFound", err)
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"alice": true, "a_b-9": true, "": false, "Alice": false, "a/b": false, "../x": false,
		"a.json": false, string(make([]byte, 65)): false,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
