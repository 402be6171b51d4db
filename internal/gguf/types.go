// Package gguf reads and writes GGUF files (versions 2 and 3), the model file
// format of ggml and llama.cpp: a header, typed metadata key/value pairs,
// tensor descriptions and an aligned data section.
//
// The reader treats every file as untrusted: each count, length, offset and
// shape is checked against the size of the input before anything is
// allocated or read, and errors name the key or tensor that is wrong. Open
// maps the file read-only; tensor bytes returned by File.Tensor are views into
// that mapping and stay valid until Close.
//
// The Writer produces byte-identical output for identical call sequences.
package gguf

import "fmt"

// Type is a ggml tensor element type.
type Type uint32

// Tensor types. Only F32, F16, BF16, Q4_0, Q8_0, Q4_K and Q6_K are supported
// by Mycel's engine; the other names are known so that errors can name them.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
)

type typeTraits struct {
	name       string
	blockSize  int
	blockBytes int
	supported  bool
}

var typeTable = map[Type]typeTraits{
	TypeF32:     {"F32", 1, 4, true},
	TypeF16:     {"F16", 1, 2, true},
	TypeQ4_0:    {"Q4_0", 32, 18, true},
	TypeQ4_1:    {"Q4_1", 32, 20, false},
	TypeQ5_0:    {"Q5_0", 32, 22, false},
	TypeQ5_1:    {"Q5_1", 32, 24, false},
	TypeQ8_0:    {"Q8_0", 32, 34, true},
	TypeQ8_1:    {"Q8_1", 32, 36, false},
	TypeQ2_K:    {"Q2_K", 256, 84, false},
	TypeQ3_K:    {"Q3_K", 256, 110, false},
	TypeQ4_K:    {"Q4_K", 256, 144, true},
	TypeQ5_K:    {"Q5_K", 256, 176, false},
	TypeQ6_K:    {"Q6_K", 256, 210, true},
	TypeQ8_K:    {"Q8_K", 256, 292, false},
	TypeIQ2_XXS: {"IQ2_XXS", 256, 66, false},
	TypeIQ2_XS:  {"IQ2_XS", 256, 74, false},
	TypeIQ3_XXS: {"IQ3_XXS", 256, 98, false},
	TypeIQ1_S:   {"IQ1_S", 256, 50, false},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18, false},
	TypeIQ3_S:   {"IQ3_S", 256, 110, false},
	TypeIQ2_S:   {"IQ2_S", 256, 82, false},
	TypeIQ4_XS:  {"IQ4_XS", 256, 136, false},
	TypeI8:      {"I8", 1, 1, false},
	TypeI16:     {"I16", 1, 2, false},
	TypeI32:     {"I32", 1, 4, false},
	TypeI64:     {"I64", 1, 8, false},
	TypeF64:     {"F64", 1, 8, false},
	TypeIQ1_M:   {"IQ1_M", 256, 56, false},
	TypeBF16:    {"BF16", 1, 2, true},
	TypeTQ1_0:   {"TQ1_0", 256, 54, false},
	TypeTQ2_0:   {"TQ2_0", 256, 66, false},
	TypeMXFP4:   {"MXFP4", 32, 17, false},
}

// String returns the ggml name of the type, or "type(N)" if it is unknown.
func (t Type) String() string {
	if tr, ok := typeTable[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Known reports whether t is a ggml type whose block layout is known.
func (t Type) Known() bool {
	_, ok := typeTable[t]
	return ok
}

// Supported reports whether Mycel's engine can compute with tensors of type t.
func (t Type) Supported() bool {
	return typeTable[t].supported
}

// BlockSize returns the number of elements per block: 1 for F32, F16 and
// BF16, 32 for Q4_0 and Q8_0, 256 for the K-quants; 0 for an unknown type.
func (t Type) BlockSize() int { return typeTable[t].blockSize }

// BlockBytes returns the number of bytes per block; 0 for an unknown type.
func (t Type) BlockBytes() int { return typeTable[t].blockBytes }

// RowBytes returns the number of bytes that n elements of type t occupy. n
// must be a non-negative multiple of the block size.
func (t Type) RowBytes(n int) (int, error) {
	tr, ok := typeTable[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%tr.blockSize != 0 {
		return 0, fmt.Errorf("%d elements of %s: not a multiple of the block size %d", n, tr.name, tr.blockSize)
	}
	blocks := n / tr.blockSize
	if blocks > maxInt/tr.blockBytes {
		return 0, fmt.Errorf("%d elements of %s: size overflows", n, tr.name)
	}
	return blocks * tr.blockBytes, nil
}

const maxInt = int(^uint(0) >> 1)

// ValueType is the type of a GGUF metadata value.
type ValueType uint32

// Metadata value types, as numbered by the GGUF specification.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

// String returns the specification's name of the value type.
func (v ValueType) String() string {
	if int(v) < len(valueTypeNames) {
		return valueTypeNames[v]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(v))
}

// size returns the encoded size of a fixed-size value type, or 0 for
// strings, arrays and unknown types.
func (v ValueType) size() int {
	switch v {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64:
		return 8
	}
	return 0
}

func (v ValueType) known() bool { return v <= ValueFloat64 }

func (v ValueType) isUnsigned() bool {
	return v == ValueUint8 || v == ValueUint16 || v == ValueUint32 || v == ValueUint64
}

func (v ValueType) isSigned() bool {
	return v == ValueInt8 || v == ValueInt16 || v == ValueInt32 || v == ValueInt64
}

func (v ValueType) isFloat() bool { return v == ValueFloat32 || v == ValueFloat64 }
