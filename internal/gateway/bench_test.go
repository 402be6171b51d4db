package gateway

import (
	"context"
	"log/slog"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPlainRequest: non-streaming chat requests, one at a time, through the gateway to an
// in-process fake provider. cpu-µs/op is the CPU time of the whole process per request
// (client, gateway with its settlement, provider): a CPU profile tells their shares apart.
func BenchmarkPlainRequest(b *testing.B) {
	e := newEnv(b, Config{}, cheap("a"))
	e.gw.log = slog.New(slog.DiscardHandler)
	c := e.client()
	ctx := context.Background()
	for range 20 { // open the channel, warm up connections
		if _, err := c.Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
			b.Fatal(err)
		}
	}
	e.settled()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := c.Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
			b.Fatal(err)
		}
	}
	e.settled()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
