package peercheck

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseIDs(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"[1, 2, 3]\n", []int{1, 2, 3}, false},
		{"[]", []int{}, false},
		{"", []int{}, false},
		{`{"ids":[5,6]}`, []int{5, 6}, false},
		{`{"model":"m","tokens":[7]}`, []int{7}, false},
		{`{"count":1,"ids":[7],"tokens":[{"id":7,"piece":"x"}]}`, []int{7}, false},
		{"1 2\n3,4", []int{1, 2, 3, 4}, false},
		{"[1, \"x\"]", nil, true},
		{`{"other":[1]}`, nil, true},
		{"1 two 3", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseIDs([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseIDs(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseIDs(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}
