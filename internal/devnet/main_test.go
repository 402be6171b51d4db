package devnet

import (
	"log/slog"
	"os"
	"testing"
)

// debugLogger, set by MYCEL_TEST_COMET_LOG=1, prints CometBFT's logs in
// the multi-validator test.
var debugLogger *slog.Logger

func TestMain(m *testing.M) {
	if os.Getenv("MYCEL_TEST_COMET_LOG") != "" {
		debugLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	os.Exit(m.Run())
}
