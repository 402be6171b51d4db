package cheat

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/quant"
)

// Requant names a weight type the tolerance bands are measured for: the
// tensor type every matrix is encoded in and llama.cpp's general.file_type.
type Requant struct {
	Name     string // the weight type's name (peercheck.WeightType)
	Type     gguf.Type
	FileType uint32
}

// Requants are the weight types beyond the demo models' own (F32, Q8_0,
// Q4_K_M) whose bands docs/VERIFICATION.md measures.
var Requants = []Requant{
	{"F16", gguf.TypeF16, 1},
	{"BF16", gguf.TypeBF16, 32},
	{"Q4_0", gguf.TypeQ4_0, 2},
	{"Q6_K", gguf.TypeQ6_K, 18},
}

// Requantize writes a copy of the F32 GGUF file src to dst with every matrix
// (every tensor of two or more dimensions) encoded as r.Type and
// general.file_type set to r.FileType; vectors stay F32, as llama.cpp's
// quantizer leaves them. The file is written to a temporary name and renamed.
func Requantize(src, dst string, r Requant) error {
	f, err := gguf.Open(src)
	if err != nil {
		return fmt.Errorf("requantize: %w", err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KV {
		w.Set(kv.Key, kv.Value)
	}
	w.SetUint32("general.file_type", r.FileType)
	if r.Type != gguf.TypeF16 && r.Type != gguf.TypeBF16 {
		w.SetUint32("general.quantization_version", 2)
	}
	for _, ti := range f.Tensors {
		info, data, err := f.Tensor(ti.Name)
		if err != nil {
			return fmt.Errorf("requantize %s: %w", ti.Name, err)
		}
		if len(info.Dims) < 2 || info.Dims[1] <= 1 {
			if err := w.AddTensor(ti.Name, info.Type, info.Dims, data); err != nil {
				return fmt.Errorf("requantize %s: %w", ti.Name, err)
			}
			continue
		}
		if info.Type != gguf.TypeF32 {
			return fmt.Errorf("requantize %s: source tensor is %v, want F32", ti.Name, info.Type)
		}
		vals := make([]float32, len(data)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		enc, err := quant.Quantize(r.Type, vals)
		if err != nil {
			return fmt.Errorf("requantize %s: %w", ti.Name, err)
		}
		if err := w.AddTensor(ti.Name, r.Type, info.Dims, enc); err != nil {
			return fmt.Errorf("requantize %s: %w", ti.Name, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".requant.*.tmp")
	if err != nil {
		return fmt.Errorf("requantize: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := w.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("requantize: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("requantize: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("requantize: %w", err)
	}
	return nil
}
