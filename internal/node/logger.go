package node

import (
	"context"
	"fmt"
	"log/slog"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// cometLogger sends CometBFT's logs to slog. CometBFT's Info is chatty
// (every block, every peer message), so it maps to slog Debug; its Error
// maps to slog Warn, since CometBFT logs recoverable conditions as errors.
type cometLogger struct{ l *slog.Logger }

func newCometLogger(l *slog.Logger) cmtlog.Logger { return cometLogger{l} }

func (c cometLogger) Debug(msg string, kv ...any) { c.log(slog.LevelDebug-4, msg, kv) }
func (c cometLogger) Info(msg string, kv ...any)  { c.log(slog.LevelDebug, msg, kv) }
func (c cometLogger) Error(msg string, kv ...any) { c.log(slog.LevelWarn, msg, kv) }

func (c cometLogger) With(kv ...any) cmtlog.Logger {
	return cometLogger{c.l.With(attrs(kv)...)}
}

func (c cometLogger) log(level slog.Level, msg string, kv []any) {
	ctx := context.Background()
	if !c.l.Enabled(ctx, level) {
		return
	}
	c.l.Log(ctx, level, msg, attrs(kv)...)
}

// attrs turns CometBFT key/value pairs into slog attributes, stringifying
// values so that CometBFT types print readably.
func attrs(kv []any) []any {
	out := make([]any, 0, len(kv)/2+1)
	for i := 0; i+1 < len(kv); i += 2 {
		key := fmt.Sprint(kv[i])
		out = append(out, slog.String(key, fmt.Sprint(kv[i+1])))
	}
	if len(kv)%2 == 1 {
		out = append(out, slog.String("extra", fmt.Sprint(kv[len(kv)-1])))
	}
	return out
}
