package peercheck

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mycel-network/mycel/internal/gguf"
)

func TestWeightType(t *testing.T) {
	type tensor struct {
		typ   gguf.Type
		dims  []uint64
		bytes int
	}
	tests := []struct {
		name     string
		fileType int // -1: absent
		tensors  []tensor
		want     string
		wantErr  bool
	}{
		{"declared", 15, []tensor{{gguf.TypeF32, []uint64{32, 2}, 256}}, "Q4_K_M", false},
		{"unknown declared falls back", 99, []tensor{{gguf.TypeF32, []uint64{32, 2}, 256}}, "F32", false},
		{"most matrix bytes", -1, []tensor{
			{gguf.TypeF32, []uint64{32, 2}, 256},
			{gguf.TypeQ8_0, []uint64{32, 16}, 16 * 34},
			{gguf.TypeF32, []uint64{512}, 2048}, // a vector: ignored
		}, "Q8_0", false},
		{"no matrices", -1, []tensor{{gguf.TypeF32, []uint64{8}, 32}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := gguf.NewWriter()
			w.SetString("general.architecture", "llama")
			if tt.fileType >= 0 {
				w.SetUint32("general.file_type", uint32(tt.fileType))
			}
			for i, ts := range tt.tensors {
				if err := w.AddTensor(filepath.Join("t", string(rune('a'+i))), ts.typ, ts.dims, make([]byte, ts.bytes)); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(t.TempDir(), "m.gguf")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.WriteTo(f); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := WeightType(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("WeightType error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("WeightType = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := WeightType(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Error("WeightType of a missing file succeeded")
	}
}
