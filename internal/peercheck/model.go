package peercheck

import (
	"fmt"
	"slices"

	"github.com/mycel-network/mycel/internal/gguf"
)

// fileTypes names the values of general.file_type (llama.cpp's llama_ftype).
var fileTypes = map[uint64]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}

// WeightType names a GGUF file's quantisation ("F32", "Q8_0", "Q4_K_M", ...),
// which its tolerance depends on: general.file_type when the file declares a
// known one, else the tensor type holding most of its matrix bytes.
func WeightType(path string) (string, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return "", fmt.Errorf("weight type: %w", err)
	}
	defer f.Close()
	if ft, err := f.Uint("general.file_type"); err == nil {
		if name, ok := fileTypes[ft]; ok {
			return name, nil
		}
	}
	bytes := map[gguf.Type]uint64{}
	for _, ti := range f.Tensors {
		if len(ti.Dims) >= 2 && ti.Dims[1] > 1 {
			bytes[ti.Type] += ti.Size
		}
	}
	if len(bytes) == 0 {
		return "", fmt.Errorf("weight type: %s has no matrices", path)
	}
	types := make([]gguf.Type, 0, len(bytes))
	for t := range bytes {
		types = append(types, t)
	}
	slices.Sort(types)
	best := types[0]
	for _, t := range types[1:] {
		if bytes[t] > bytes[best] {
			best = t
		}
	}
	return best.String(), nil
}
