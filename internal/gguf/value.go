package gguf

import (
	"fmt"
	"math"
	"strings"
)

// Value is one metadata value: a scalar, a string or an array. Numeric
// scalars keep their exact encoded type.
type Value struct {
	// Type is the value's type; for arrays, ElemType is the element type.
	Type     ValueType
	ElemType ValueType

	bits uint64   // numeric and bool scalars: the raw value, sign-extended for signed types
	str  string   // ValueString
	nums []uint64 // numeric and bool arrays, same encoding as bits
	strs []string // string arrays
	arrs []Value  // arrays of arrays
}

// KV is one metadata key/value pair.
type KV struct {
	Key   string
	Value Value
}

// Constructors for values, for use with Writer.Set.

// StringValue returns a string value.
func StringValue(s string) Value { return Value{Type: ValueString, str: s} }

// Uint32Value returns a uint32 value.
func Uint32Value(v uint32) Value { return Value{Type: ValueUint32, bits: uint64(v)} }

// Uint64Value returns a uint64 value.
func Uint64Value(v uint64) Value { return Value{Type: ValueUint64, bits: v} }

// Int32Value returns an int32 value.
func Int32Value(v int32) Value { return Value{Type: ValueInt32, bits: uint64(int64(v))} }

// Int64Value returns an int64 value.
func Int64Value(v int64) Value { return Value{Type: ValueInt64, bits: uint64(v)} }

// Float32Value returns a float32 value.
func Float32Value(v float32) Value {
	return Value{Type: ValueFloat32, bits: uint64(math.Float32bits(v))}
}

// Float64Value returns a float64 value.
func Float64Value(v float64) Value { return Value{Type: ValueFloat64, bits: math.Float64bits(v)} }

// BoolValue returns a bool value.
func BoolValue(v bool) Value {
	b := uint64(0)
	if v {
		b = 1
	}
	return Value{Type: ValueBool, bits: b}
}

// StringsValue returns an array of strings.
func StringsValue(v []string) Value {
	return Value{Type: ValueArray, ElemType: ValueString, strs: append([]string(nil), v...)}
}

// Int32sValue returns an array of int32.
func Int32sValue(v []int32) Value {
	nums := make([]uint64, len(v))
	for i, x := range v {
		nums[i] = uint64(int64(x))
	}
	return Value{Type: ValueArray, ElemType: ValueInt32, nums: nums}
}

// Float32sValue returns an array of float32.
func Float32sValue(v []float32) Value {
	nums := make([]uint64, len(v))
	for i, x := range v {
		nums[i] = uint64(math.Float32bits(x))
	}
	return Value{Type: ValueArray, ElemType: ValueFloat32, nums: nums}
}

// Len returns the number of elements of an array value, 0 otherwise.
func (v Value) Len() int {
	if v.Type != ValueArray {
		return 0
	}
	switch {
	case v.ElemType == ValueString:
		return len(v.strs)
	case v.ElemType == ValueArray:
		return len(v.arrs)
	default:
		return len(v.nums)
	}
}

// Str returns the string of a string value.
func (v Value) Str() (string, bool) {
	if v.Type != ValueString {
		return "", false
	}
	return v.str, true
}

// Uint returns an integer value of any width and signedness that is ≥ 0.
func (v Value) Uint() (uint64, bool) {
	switch {
	case v.Type.isUnsigned():
		return v.bits, true
	case v.Type.isSigned() && int64(v.bits) >= 0:
		return v.bits, true
	}
	return 0, false
}

// Int returns an integer value of any width that fits in an int64.
func (v Value) Int() (int64, bool) {
	switch {
	case v.Type.isSigned():
		return int64(v.bits), true
	case v.Type.isUnsigned() && v.bits <= math.MaxInt64:
		return int64(v.bits), true
	}
	return 0, false
}

// Float returns a float32 or float64 value.
func (v Value) Float() (float64, bool) {
	switch v.Type {
	case ValueFloat32:
		return float64(math.Float32frombits(uint32(v.bits))), true
	case ValueFloat64:
		return math.Float64frombits(v.bits), true
	}
	return 0, false
}

// Bool returns a bool value.
func (v Value) Bool() (bool, bool) {
	if v.Type != ValueBool {
		return false, false
	}
	return v.bits != 0, true
}

// Strings returns the elements of an array of strings.
func (v Value) Strings() ([]string, bool) {
	if v.Type != ValueArray || v.ElemType != ValueString {
		return nil, false
	}
	return v.strs, true
}

// Ints returns the elements of an array of integers (any width) as int64.
// It fails for uint64 elements above math.MaxInt64.
func (v Value) Ints() ([]int64, bool) {
	if v.Type != ValueArray || !(v.ElemType.isSigned() || v.ElemType.isUnsigned()) {
		return nil, false
	}
	out := make([]int64, len(v.nums))
	for i, n := range v.nums {
		if v.ElemType == ValueUint64 && n > math.MaxInt64 {
			return nil, false
		}
		out[i] = int64(n)
	}
	return out, true
}

// Floats returns the elements of an array of float32 or float64 as float32.
func (v Value) Floats() ([]float32, bool) {
	if v.Type != ValueArray || !v.ElemType.isFloat() {
		return nil, false
	}
	out := make([]float32, len(v.nums))
	for i, n := range v.nums {
		if v.ElemType == ValueFloat32 {
			out[i] = math.Float32frombits(uint32(n))
		} else {
			out[i] = float32(math.Float64frombits(n))
		}
	}
	return out, true
}

// Arrays returns the elements of an array of arrays.
func (v Value) Arrays() ([]Value, bool) {
	if v.Type != ValueArray || v.ElemType != ValueArray {
		return nil, false
	}
	return v.arrs, true
}

// describe names the type of v for error messages, e.g. "array of string".
func (v Value) describe() string {
	if v.Type == ValueArray {
		return "array of " + v.ElemType.String()
	}
	return v.Type.String()
}

// String formats the value for humans; long arrays are abbreviated.
func (v Value) String() string {
	switch {
	case v.Type == ValueString:
		return fmt.Sprintf("%q", v.str)
	case v.Type == ValueBool:
		return fmt.Sprint(v.bits != 0)
	case v.Type.isFloat():
		f, _ := v.Float()
		return fmt.Sprint(f)
	case v.Type.isSigned():
		return fmt.Sprint(int64(v.bits))
	case v.Type.isUnsigned():
		return fmt.Sprint(v.bits)
	case v.Type == ValueArray:
		n := v.Len()
		const show = 8
		parts := make([]string, 0, show+1)
		for i := 0; i < n && i < show; i++ {
			parts = append(parts, v.elem(i).String())
		}
		if n > show {
			parts = append(parts, fmt.Sprintf("... (%d elements)", n))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return v.Type.String()
}

func (v Value) elem(i int) Value {
	switch v.ElemType {
	case ValueString:
		return Value{Type: ValueString, str: v.strs[i]}
	case ValueArray:
		return v.arrs[i]
	default:
		return Value{Type: v.ElemType, bits: v.nums[i]}
	}
}
