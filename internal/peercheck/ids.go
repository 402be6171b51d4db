package peercheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ParseIDs reads the token ids a tokenize command printed: a JSON array of
// integers, a JSON object with an "ids" or "tokens" array, or integers
// separated by spaces, commas or newlines.
func ParseIDs(out []byte) ([]int, error) {
	out = bytes.TrimSpace(out)
	switch {
	case len(out) == 0:
		return []int{}, nil
	case out[0] == '[':
		var ids []int
		if err := json.Unmarshal(out, &ids); err != nil {
			return nil, fmt.Errorf("parse ids: %w", err)
		}
		return ids, nil
	case out[0] == '{':
		var obj struct {
			IDs    json.RawMessage `json:"ids"`
			Tokens json.RawMessage `json:"tokens"`
		}
		if err := json.Unmarshal(out, &obj); err != nil {
			return nil, fmt.Errorf("parse ids: %w", err)
		}
		raw := obj.IDs
		if raw == nil {
			raw = obj.Tokens
		}
		if raw == nil {
			return nil, fmt.Errorf("parse ids: object has neither ids nor tokens")
		}
		var ids []int
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, fmt.Errorf("parse ids: %w", err)
		}
		return ids, nil
	}
	fields := strings.FieldsFunc(string(out), func(r rune) bool {
		return r == ' ' || r == ',' || r == '\n' || r == '\t' || r == '\r'
	})
	ids := make([]int, 0, len(fields))
	for _, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse ids: %q is not an integer", f)
		}
		ids = append(ids, n)
	}
	return ids, nil
}
