package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sort"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment used when general.alignment is absent.
const DefaultAlignment = 32

const (
	maxDepth      = 3     // nesting depth of arrays of arrays
	maxDims       = 4     // tensor dimensions
	maxNameLen    = 63    // tensor names, as in ggml (GGML_MAX_NAME - 1)
	maxKeyLen     = 65535 // metadata keys, per the specification
	maxAlignment  = 1 << 20
	headerMinSize = 4 + 4 + 8 + 8
)

// File is a parsed GGUF file. KV and Tensors are in file order.
type File struct {
	Version   uint32
	Alignment uint64
	KV        []KV
	Tensors   []TensorInfo

	data       []byte // the whole file
	dataOffset uint64 // start of the data section within data
	kvIndex    map[string]int
	tensors    map[string]int
	unmap      func() error
}

// TensorInfo describes one tensor.
type TensorInfo struct {
	Name string
	// Dims are in ggml order: Dims[0] is the contiguous (row) length and
	// Dims[1] the number of rows.
	Dims   []uint64
	Type   Type
	Offset uint64 // relative to the start of the data section
	Size   uint64 // bytes
}

// Elements returns the number of elements of the tensor.
func (ti TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range ti.Dims {
		n *= d
	}
	return n
}

// DataOffset returns the absolute file offset of the data section.
func (f *File) DataOffset() uint64 { return f.dataOffset }

// Parse parses and validates a GGUF file held in memory. Tensor data views
// returned by Tensor alias data.
func Parse(data []byte) (*File, error) {
	d := &decoder{buf: data}
	f, err := d.file()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

// Get returns the value of a metadata key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

func (f *File) lookup(key string) (Value, error) {
	v, ok := f.Get(key)
	if !ok {
		return Value{}, fmt.Errorf("gguf: metadata key %s: missing", key)
	}
	return v, nil
}

func mismatch(key string, v Value, want string) error {
	return fmt.Errorf("gguf: metadata key %s: is %s, want %s", key, v.describe(), want)
}

// String returns a string metadata value.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := v.Str()
	if !ok {
		return "", mismatch(key, v, "string")
	}
	return s, nil
}

// Uint returns an integer metadata value of any width or signedness that is ≥ 0.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	u, ok := v.Uint()
	if !ok {
		if v.Type.isSigned() {
			return 0, fmt.Errorf("gguf: metadata key %s: negative value %d", key, int64(v.bits))
		}
		return 0, mismatch(key, v, "unsigned integer")
	}
	return u, nil
}

// Float returns a float32 or float64 metadata value.
func (f *File) Float(key string) (float64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	x, ok := v.Float()
	if !ok {
		return 0, mismatch(key, v, "float32 or float64")
	}
	return x, nil
}

// Bool returns a bool metadata value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := v.Bool()
	if !ok {
		return false, mismatch(key, v, "bool")
	}
	return b, nil
}

// Strings returns an array-of-strings metadata value.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.Strings()
	if !ok {
		return nil, mismatch(key, v, "array of string")
	}
	return s, nil
}

// Ints returns an array-of-integers metadata value.
func (f *File) Ints(key string) ([]int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.Ints()
	if !ok {
		return nil, mismatch(key, v, "array of integers")
	}
	return s, nil
}

// Floats returns an array-of-floats metadata value.
func (f *File) Floats(key string) ([]float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.Floats()
	if !ok {
		return nil, mismatch(key, v, "array of float32 or float64")
	}
	return s, nil
}

// Tensor returns a tensor's description and its bytes, a view into the file.
func (f *File) Tensor(name string) (TensorInfo, []byte, error) {
	i, ok := f.tensors[name]
	if !ok {
		return TensorInfo{}, nil, fmt.Errorf("gguf: tensor %s: not found", name)
	}
	ti := f.Tensors[i]
	if f.data == nil {
		return TensorInfo{}, nil, fmt.Errorf("gguf: tensor %s: file is closed", name)
	}
	start := f.dataOffset + ti.Offset
	return ti, f.data[start : start+ti.Size : start+ti.Size], nil
}

// decoder reads a GGUF file from a byte slice, bounds-checking every read.
type decoder struct {
	buf []byte
	pos uint64
}

func (d *decoder) remaining() uint64 { return uint64(len(d.buf)) - d.pos }

func (d *decoder) need(n uint64, what string) error {
	if n > d.remaining() {
		return fmt.Errorf("%s: need %d bytes at offset %d, file has %d", what, n, d.pos, len(d.buf))
	}
	return nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(d.buf[d.pos:])
	d.pos += 4
	return v, nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(d.buf[d.pos:])
	d.pos += 8
	return v, nil
}

func (d *decoder) str(what string) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > d.remaining() {
		return "", fmt.Errorf("%s: length %d at offset %d exceeds the %d bytes left", what, n, d.pos-8, d.remaining())
	}
	s := string(d.buf[d.pos : d.pos+n])
	d.pos += n
	return s, nil
}

func (d *decoder) file() (*File, error) {
	if len(d.buf) < headerMinSize {
		return nil, fmt.Errorf("file too short for a header (%d bytes)", len(d.buf))
	}
	if string(d.buf[:4]) != Magic {
		return nil, fmt.Errorf("bad magic %q, want %q", d.buf[:4], Magic)
	}
	d.pos = 4
	version, _ := d.u32("version")
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("unsupported version %d (want 2 or 3)", version)
	}
	nTensors, _ := d.u64("tensor count")
	nKV, _ := d.u64("metadata count")
	// Each KV takes at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes;
	// each tensor info at least 8 + 1 + 4 + 8 + 4 + 8.
	const minKV, minTensor = 14, 33
	if nKV > d.remaining()/minKV {
		return nil, fmt.Errorf("metadata count %d cannot fit in the %d bytes left", nKV, d.remaining())
	}
	f := &File{
		Version:   version,
		Alignment: DefaultAlignment,
		KV:        make([]KV, 0, nKV),
		kvIndex:   make(map[string]int, nKV),
		data:      d.buf,
	}
	for i := uint64(0); i < nKV; i++ {
		key, err := d.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, err
		}
		if key == "" || len(key) > maxKeyLen {
			return nil, fmt.Errorf("metadata key %d: invalid length %d", i, len(key))
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("metadata key %s: duplicate", key)
		}
		t, err := d.u32("metadata key " + key + " type")
		if err != nil {
			return nil, err
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata key %s: %w", key, err)
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, ok := v.Uint()
		if !ok || v.Type != ValueUint32 {
			return nil, fmt.Errorf("metadata key general.alignment: is %s, want uint32", v.describe())
		}
		if a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return nil, fmt.Errorf("metadata key general.alignment: %d is not a power of two ≤ %d", a, maxAlignment)
		}
		f.Alignment = a
	}

	if nTensors > d.remaining()/minTensor {
		return nil, fmt.Errorf("tensor count %d cannot fit in the %d bytes left", nTensors, d.remaining())
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.tensors = make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		ti, err := d.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if _, dup := f.tensors[ti.Name]; dup {
			return nil, fmt.Errorf("tensor %s: duplicate name", ti.Name)
		}
		f.tensors[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}

	f.dataOffset = alignUp(d.pos, f.Alignment)
	fileSize := uint64(len(d.buf))
	if len(f.Tensors) > 0 && f.dataOffset > fileSize {
		return nil, fmt.Errorf("data section starts at %d, past end of file (size %d)", f.dataOffset, fileSize)
	}
	for _, ti := range f.Tensors {
		if ti.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("tensor %s: offset %d is not a multiple of the alignment %d", ti.Name, ti.Offset, f.Alignment)
		}
		end := f.dataOffset + ti.Offset + ti.Size
		if ti.Offset > fileSize || end < ti.Offset || end > fileSize {
			return nil, fmt.Errorf("tensor %s: data [offset %d, size %d] extends past end of file (size %d)",
				ti.Name, f.dataOffset+ti.Offset, ti.Size, fileSize)
		}
	}
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := f.Tensors[order[k-1]], f.Tensors[order[k]]
		if prev.Offset+prev.Size > cur.Offset {
			return nil, fmt.Errorf("tensor %s: data [offset %d, size %d] overlaps tensor %s [offset %d, size %d]",
				cur.Name, cur.Offset, cur.Size, prev.Name, prev.Offset, prev.Size)
		}
	}
	return f, nil
}

func alignUp(n, a uint64) uint64 {
	r := n % a
	if r == 0 {
		return n
	}
	if n > math.MaxUint64-(a-r) {
		return math.MaxUint64
	}
	return n + a - r
}

func (d *decoder) tensorInfo(i uint64) (TensorInfo, error) {
	name, err := d.str(fmt.Sprintf("tensor %d name", i))
	if err != nil {
		return TensorInfo{}, err
	}
	if name == "" || len(name) > maxNameLen {
		return TensorInfo{}, fmt.Errorf("tensor %d: name length %d not in 1..%d", i, len(name), maxNameLen)
	}
	nDims, err := d.u32("tensor " + name + " dimension count")
	if err != nil {
		return TensorInfo{}, err
	}
	if nDims < 1 || nDims > maxDims {
		return TensorInfo{}, fmt.Errorf("tensor %s: %d dimensions, want 1 to %d", name, nDims, maxDims)
	}
	ti := TensorInfo{Name: name, Dims: make([]uint64, nDims)}
	elems := uint64(1)
	for k := range ti.Dims {
		n, err := d.u64("tensor " + name + " dimensions")
		if err != nil {
			return TensorInfo{}, err
		}
		if n == 0 {
			return TensorInfo{}, fmt.Errorf("tensor %s: dimension %d is zero", name, k)
		}
		hi, lo := bits.Mul64(elems, n)
		if hi != 0 || lo > math.MaxInt64 {
			return TensorInfo{}, fmt.Errorf("tensor %s: element count overflows (dims %v)", name, ti.Dims[:k+1])
		}
		ti.Dims[k] = n
		elems = lo
	}
	t, err := d.u32("tensor " + name + " type")
	if err != nil {
		return TensorInfo{}, err
	}
	ti.Type = Type(t)
	if !ti.Type.Known() {
		return TensorInfo{}, fmt.Errorf("tensor %s: unknown type %d", name, t)
	}
	if ti.Offset, err = d.u64("tensor " + name + " offset"); err != nil {
		return TensorInfo{}, err
	}
	size, err := tensorSize(ti.Type, ti.Dims)
	if err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %s: %w", name, err)
	}
	ti.Size = size
	return ti, nil
}

// tensorSize returns the byte size of a tensor with the given type and dims.
func tensorSize(t Type, dims []uint64) (uint64, error) {
	bs, bb := uint64(t.BlockSize()), uint64(t.BlockBytes())
	if bs == 0 {
		return 0, fmt.Errorf("unknown type %d", uint32(t))
	}
	if dims[0]%bs != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of the %s block size %d", dims[0], t, bs)
	}
	hi, size := bits.Mul64(dims[0]/bs, bb)
	for _, n := range dims[1:] {
		var h uint64
		h, size = bits.Mul64(size, n)
		hi |= h
	}
	if hi != 0 || size > math.MaxInt64 {
		return 0, fmt.Errorf("size of %v %s overflows", dims, t)
	}
	return size, nil
}

func (d *decoder) value(t ValueType, depth int) (Value, error) {
	if !t.known() {
		return Value{}, fmt.Errorf("unknown value type %d", uint32(t))
	}
	v := Value{Type: t}
	switch {
	case t == ValueString:
		s, err := d.str("string")
		if err != nil {
			return Value{}, err
		}
		v.str = s
	case t == ValueArray:
		if depth >= maxDepth {
			return Value{}, fmt.Errorf("arrays nested deeper than %d", maxDepth)
		}
		et, err := d.u32("array element type")
		if err != nil {
			return Value{}, err
		}
		v.ElemType = ValueType(et)
		if !v.ElemType.known() {
			return Value{}, fmt.Errorf("array of unknown value type %d", et)
		}
		n, err := d.u64("array length")
		if err != nil {
			return Value{}, err
		}
		minSize := uint64(v.ElemType.size())
		switch v.ElemType {
		case ValueString:
			minSize = 8
		case ValueArray:
			minSize = 12
		}
		if n > d.remaining()/minSize {
			return Value{}, fmt.Errorf("array of %d %s elements cannot fit in the %d bytes left", n, v.ElemType, d.remaining())
		}
		switch v.ElemType {
		case ValueString:
			if v.strs, err = d.strArray(n); err != nil {
				return Value{}, err
			}
		case ValueArray:
			v.arrs = make([]Value, n)
			for i := range v.arrs {
				if v.arrs[i], err = d.value(ValueArray, depth+1); err != nil {
					return Value{}, fmt.Errorf("array element %d: %w", i, err)
				}
			}
		default:
			v.nums = make([]uint64, n)
			for i := range v.nums {
				v.nums[i] = d.scalar(v.ElemType)
			}
		}
	default:
		if err := d.need(uint64(t.size()), t.String()); err != nil {
			return Value{}, err
		}
		v.bits = d.scalar(t)
		if t == ValueBool && v.bits > 1 {
			return Value{}, fmt.Errorf("bool value %d is not 0 or 1", v.bits)
		}
	}
	return v, nil
}

// strArray reads n strings. It validates every length first and then copies
// the whole region once, so that the strings share one allocation instead of
// one each (a vocabulary holds hundreds of thousands).
func (d *decoder) strArray(n uint64) ([]string, error) {
	start := d.pos
	for i := uint64(0); i < n; i++ {
		if d.remaining() < 8 {
			return nil, d.need(8, fmt.Sprintf("array element %d length", i))
		}
		l := binary.LittleEndian.Uint64(d.buf[d.pos:])
		d.pos += 8
		if l > d.remaining() {
			return nil, fmt.Errorf("array element %d: length %d at offset %d exceeds the %d bytes left", i, l, d.pos-8, d.remaining())
		}
		d.pos += l
	}
	raw := d.buf[start:d.pos]
	block := string(raw)
	strs := make([]string, n)
	off := uint64(0)
	for i := range strs {
		l := binary.LittleEndian.Uint64(raw[off:])
		strs[i] = block[off+8 : off+8+l]
		off += 8 + l
	}
	return strs, nil
}

// scalar decodes a fixed-size value whose bytes the caller has checked.
func (d *decoder) scalar(t ValueType) uint64 {
	b := d.buf[d.pos:]
	var v uint64
	switch t {
	case ValueUint8, ValueBool:
		v = uint64(b[0])
	case ValueInt8:
		v = uint64(int64(int8(b[0])))
	case ValueUint16:
		v = uint64(binary.LittleEndian.Uint16(b))
	case ValueInt16:
		v = uint64(int64(int16(binary.LittleEndian.Uint16(b))))
	case ValueUint32, ValueFloat32:
		v = uint64(binary.LittleEndian.Uint32(b))
	case ValueInt32:
		v = uint64(int64(int32(binary.LittleEndian.Uint32(b))))
	default:
		v = binary.LittleEndian.Uint64(b)
	}
	d.pos += uint64(t.size())
	return v
}
