// Package address derives and validates Mycel account addresses: bech32 strings with the
// human-readable prefix "myc" over the first 20 bytes of sha256(ed25519 public key).
package address

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil/bech32"
)

// Prefix is the bech32 human-readable part of every Mycel address.
const Prefix = "myc"

// Len is the number of raw bytes an address encodes.
const Len = 20

// Errors returned by Validate and Bytes; match them with errors.Is.
var (
	ErrChecksum = errors.New("bad checksum")
	ErrPrefix   = errors.New("wrong prefix")
	ErrLength   = errors.New("wrong length")
	ErrFormat   = errors.New("malformed address")
)

// FromPubKey returns the address of an ed25519 public key. A key of the wrong length still
// yields a deterministic (but useless) address; callers validate key lengths separately.
func FromPubKey(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return FromBytes(sum[:Len])
}

// FromBytes encodes 20 raw address bytes as a bech32 address.
func FromBytes(b []byte) string {
	conv, err := bech32.ConvertBits(b, 8, 5, true)
	if err != nil {
		return ""
	}
	s, err := bech32.Encode(Prefix, conv)
	if err != nil {
		return ""
	}
	return s
}

// Validate reports why addr is not a canonical Mycel address (lower-case bech32, prefix "myc",
// 20 bytes), or nil.
func Validate(addr string) error {
	_, err := Bytes(addr)
	return err
}

// Bytes decodes a canonical address into its 20 raw bytes.
func Bytes(addr string) ([]byte, error) {
	if addr == "" {
		return nil, fmt.Errorf("address: empty: %w", ErrFormat)
	}
	if len(addr) > 90 {
		return nil, fmt.Errorf("address %.20q...: too long: %w", addr, ErrLength)
	}
	if strings.ToLower(addr) != addr {
		return nil, fmt.Errorf("address %q: must be lower case: %w", addr, ErrFormat)
	}
	hrp, data, ver, err := bech32.DecodeGeneric(addr)
	if err != nil {
		var cs bech32.ErrInvalidChecksum
		if errors.As(err, &cs) {
			return nil, fmt.Errorf("address %q: %w", addr, ErrChecksum)
		}
		return nil, fmt.Errorf("address %q: %v: %w", addr, err, ErrFormat)
	}
	if hrp != Prefix {
		return nil, fmt.Errorf("address %q: prefix %q, want %q: %w", addr, hrp, Prefix, ErrPrefix)
	}
	raw, err := bech32.ConvertBits(data, 5, 8, false)
	if err != nil {
		return nil, fmt.Errorf("address %q: %v: %w", addr, err, ErrFormat)
	}
	if len(raw) != Len {
		return nil, fmt.Errorf("address %q: %d bytes, want %d: %w", addr, len(raw), Len, ErrLength)
	}
	if ver != bech32.Version0 || FromBytes(raw) != addr {
		return nil, fmt.Errorf("address %q: not canonical bech32: %w", addr, ErrFormat)
	}
	return raw, nil
}
