package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/mycel-network/mycel/internal/channel"
)

// TestBudgetHeldByConcurrentRequests: requests in flight hold the most they may cost, so N
// concurrent requests against a budget that covers fewer than N never spend beyond it; the
// refused ones get 429 insufficient_quota with a Retry-After.
func TestBudgetHeldByConcurrentRequests(t *testing.T) {
	e := newEnv(t, Config{NoHedge: true}, pricey("a"))
	const budget, n = 100, 8
	secret, key, err := e.keys.Create("budgeted", budget, 0, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	e.provs["a"].SetHold(release)
	c := e.client(option.WithAPIKey(secret))
	p := chatParams(testPrompt)
	p.MaxTokens = oai.Int(8)
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Chat.Completions.New(context.Background(), p)
			var ae *oai.Error
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests:
				if ae.Code != "insufficient_quota" || ae.Response.Header.Get("Retry-After") == "" {
					errs <- errors.New("429 without code insufficient_quota or Retry-After: " + err.Error())
				}
				refused.Add(1)
			default:
				errs <- err
			}
		}()
	}
	// Every request is either at the provider (held) or refused before the answers start.
	waitFor(t, "all requests admitted or refused", func() bool { return int64(e.provs["a"].Requests())+refused.Load() == n })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e.settled()
	var spent uint64
	ks, _ := e.keys.List()
	for _, k := range ks {
		if k.ID == key.ID {
			spent = k.SpentUmyc
		}
	}
	per, _ := channel.Cost(testPromptTokens, 8, 1_000_000, 2_000_000)
	if spent > budget || refused.Load() == 0 || ok.Load() == 0 || spent != uint64(ok.Load())*per {
		t.Errorf("spent %d of a %d budget with %d answered (%d each) and %d refused: want no overspend", spent, budget, ok.Load(), per, refused.Load())
	}
	if r := e.keys.Reserved(key.ID); r != 0 {
		t.Errorf("%d umyc still reserved after every answer settled", r)
	}
}
