package demomodel

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The example of the Hugging Face course's BPE chapter.
func TestTrainBPE(t *testing.T) {
	words := []wordCount{{"bun", 4}, {"hug", 10}, {"hugs", 5}, {"pug", 5}, {"pun", 12}}
	v := trainBPE(words, 256+3)
	if diff := cmp.Diff([]string{"u g", "u n", "h ug"}, v.merges); diff != "" {
		t.Errorf("merges (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ug", "un", "hug"}, v.tokens[256:]); diff != "" {
		t.Errorf("new tokens (-want +got):\n%s", diff)
	}
	tests := []struct {
		word string
		want []string
	}{
		{"hugs", []string{"hug", "s"}},
		{"bug", []string{"b", "ug"}},
		{"thug", []string{"t", "hug"}},
		{"unhug", []string{"un", "hug"}},
		{"x", []string{"x"}},
		{"", nil},
	}
	for _, tc := range tests {
		var got []string
		for _, id := range v.encodeWord(tc.word, nil) {
			got = append(got, v.tokBytes[id])
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("encodeWord(%q) (-want +got):\n%s", tc.word, diff)
		}
	}
}

// Tokens are written in GPT-2's byte-to-unicode form: a leading space is Ġ.
func TestTrainBPEByteLevel(t *testing.T) {
	words := []wordCount{{" go", 9}, {" gopher", 3}, {"\n", 2}}
	v := trainBPE(words, 256+2)
	if diff := cmp.Diff([]string{"Ġ g", "Ġg o"}, v.merges); diff != "" {
		t.Errorf("merges (-want +got):\n%s", diff)
	}
	if got, want := v.tokBytes[257], " go"; got != want {
		t.Errorf("bytes of token 257 = %q, want %q", got, want)
	}
}

// TestTrainBPEStopsWithoutPairs: training ends when no pair occurs twice.
func TestTrainBPEStopsWithoutPairs(t *testing.T) {
	v := trainBPE([]wordCount{{"ab", 1}, {"cd", 1}}, 300)
	if len(v.merges) != 0 || len(v.tokens) != 256 {
		t.Errorf("got %d merges, %d tokens; want 0, 256", len(v.merges), len(v.tokens))
	}
}
