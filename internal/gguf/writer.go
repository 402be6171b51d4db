package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Writer builds a GGUF version 3 file. Its output depends only on the calls
// made: metadata keys and tensors are written in insertion order (setting a
// key again replaces its value in place) and padding is zero.
type Writer struct {
	kv      []KV
	kvIndex map[string]int
	tensors []writerTensor
	names   map[string]bool
}

type writerTensor struct {
	info TensorInfo
	data []byte
}

// NewWriter returns an empty Writer. Data is aligned to 32 bytes unless
// general.alignment is set (as a uint32 power of two).
func NewWriter() *Writer {
	return &Writer{kvIndex: map[string]int{}, names: map[string]bool{}}
}

// Set sets a metadata key to any value.
func (w *Writer) Set(key string, v Value) {
	if i, ok := w.kvIndex[key]; ok {
		w.kv[i].Value = v
		return
	}
	w.kvIndex[key] = len(w.kv)
	w.kv = append(w.kv, KV{Key: key, Value: v})
}

// SetString sets a string value.
func (w *Writer) SetString(key, v string) { w.Set(key, StringValue(v)) }

// SetUint32 sets a uint32 value.
func (w *Writer) SetUint32(key string, v uint32) { w.Set(key, Uint32Value(v)) }

// SetUint64 sets a uint64 value.
func (w *Writer) SetUint64(key string, v uint64) { w.Set(key, Uint64Value(v)) }

// SetInt32 sets an int32 value.
func (w *Writer) SetInt32(key string, v int32) { w.Set(key, Int32Value(v)) }

// SetFloat32 sets a float32 value.
func (w *Writer) SetFloat32(key string, v float32) { w.Set(key, Float32Value(v)) }

// SetBool sets a bool value.
func (w *Writer) SetBool(key string, v bool) { w.Set(key, BoolValue(v)) }

// SetStrings sets an array of strings.
func (w *Writer) SetStrings(key string, v []string) { w.Set(key, StringsValue(v)) }

// SetInt32s sets an array of int32.
func (w *Writer) SetInt32s(key string, v []int32) { w.Set(key, Int32sValue(v)) }

// SetFloat32s sets an array of float32.
func (w *Writer) SetFloat32s(key string, v []float32) { w.Set(key, Float32sValue(v)) }

// AddTensor appends a tensor. dims are in ggml order (dims[0] is the row
// length); len(data) must equal the size the type and dims imply. The data
// is not copied: it must not change before WriteTo.
func (w *Writer) AddTensor(name string, t Type, dims []uint64, data []byte) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("gguf: tensor %q: name length %d not in 1..%d", name, len(name), maxNameLen)
	}
	if w.names[name] {
		return fmt.Errorf("gguf: tensor %s: duplicate name", name)
	}
	if !t.Known() {
		return fmt.Errorf("gguf: tensor %s: unknown type %d", name, uint32(t))
	}
	if len(dims) < 1 || len(dims) > maxDims {
		return fmt.Errorf("gguf: tensor %s: %d dimensions, want 1 to %d", name, len(dims), maxDims)
	}
	for i, d := range dims {
		if d == 0 {
			return fmt.Errorf("gguf: tensor %s: dimension %d is zero", name, i)
		}
	}
	size, err := tensorSize(t, dims)
	if err != nil {
		return fmt.Errorf("gguf: tensor %s: %w", name, err)
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("gguf: tensor %s: %d bytes of data, %v %s needs %d", name, len(data), dims, t, size)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, writerTensor{
		info: TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: t, Size: size},
		data: data,
	})
	return nil
}

func (w *Writer) alignment() (uint64, error) {
	i, ok := w.kvIndex["general.alignment"]
	if !ok {
		return DefaultAlignment, nil
	}
	v := w.kv[i].Value
	a, _ := v.Uint()
	if v.Type != ValueUint32 || a == 0 || a&(a-1) != 0 || a > maxAlignment {
		return 0, fmt.Errorf("gguf: general.alignment must be a uint32 power of two ≤ %d, is %s %s", maxAlignment, v.describe(), v)
	}
	return a, nil
}

// WriteTo writes the file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	e := &encoder{w: bufio.NewWriterSize(out, 1<<16)}
	e.bytes([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kv)))
	for _, kv := range w.kv {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	var off uint64
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		off = alignUp(off, align)
		e.u64(off)
		off += t.info.Size
	}
	e.pad(align)
	start := e.n
	for _, t := range w.tensors {
		e.padTo(start, align)
		e.bytes(t.data)
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err != nil {
		return e.n, fmt.Errorf("gguf: write: %w", e.err)
	}
	return e.n, nil
}

type encoder struct {
	w   *bufio.Writer
	n   int64
	err error
	tmp [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	n, err := e.w.Write(b)
	e.n += int64(n)
	e.err = err
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.tmp[:], v)
	e.bytes(e.tmp[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.tmp[:], v)
	e.bytes(e.tmp[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err != nil {
		return
	}
	n, err := e.w.WriteString(s)
	e.n += int64(n)
	e.err = err
}

func (e *encoder) pad(align uint64) { e.padTo(0, align) }

// padTo writes zeros until (e.n - base) is a multiple of align.
func (e *encoder) padTo(base int64, align uint64) {
	var zero [64]byte
	for uint64(e.n-base)%align != 0 {
		k := int(align - uint64(e.n-base)%align)
		if k > len(zero) {
			k = len(zero)
		}
		e.bytes(zero[:k])
		if e.err != nil {
			return
		}
	}
}

func (e *encoder) scalar(t ValueType, bits uint64) {
	binary.LittleEndian.PutUint64(e.tmp[:], bits)
	e.bytes(e.tmp[:t.size()])
}

func (e *encoder) value(v Value) {
	switch {
	case v.Type == ValueString:
		e.str(v.str)
	case v.Type == ValueArray:
		e.u32(uint32(v.ElemType))
		e.u64(uint64(v.Len()))
		switch v.ElemType {
		case ValueString:
			for _, s := range v.strs {
				e.str(s)
			}
		case ValueArray:
			for _, a := range v.arrs {
				e.value(a)
			}
		default:
			for _, n := range v.nums {
				e.scalar(v.ElemType, n)
			}
		}
	default:
		e.scalar(v.Type, v.bits)
	}
}
