package demomodel

import (
	"context"
	"testing"
)

// BenchmarkGenerate measures writing all demo models into an empty
// directory (what `mycel devnet` does on first start). Run it on one core:
//
//	GOMAXPROCS=1 go test -run '^$' -bench Generate -benchtime 3x ./internal/demomodel
func BenchmarkGenerate(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Generate(context.Background(), b.TempDir(), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGenerateUpToDate measures the check of existing files.
func BenchmarkGenerateUpToDate(b *testing.B) {
	dir := b.TempDir()
	if _, err := Generate(context.Background(), dir, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Generate(context.Background(), dir, nil); err != nil {
			b.Fatal(err)
		}
	}
}
