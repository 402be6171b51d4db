package engine

import (
	"sync"
	"sync/atomic"
)

// pool runs index ranges across a fixed number of goroutines. Each call
// starts its helpers and waits for them, so no goroutine outlives a call.
type pool struct {
	threads int
}

// minParallelWork is the work (in multiply-adds) below which a call runs on
// the calling goroutine: waking helpers costs more than it saves.
const minParallelWork = 1 << 16

// runCost is run for items that each cost about cost multiply-adds.
func (p *pool) runCost(n, cost int, fn func(worker, i int)) {
	if n*cost < minParallelWork {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	p.run(n, fn)
}

// run calls fn(worker, i) for every i in [0, n), spreading indices over up to
// p.threads goroutines (worker in [0, threads)). Which goroutine handles
// which index does not affect results: every index writes its own outputs.
func (p *pool) run(n int, fn func(worker, i int)) {
	t := min(p.threads, n)
	if t <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func(w int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(w, i)
		}
	}
	wg.Add(t - 1)
	for w := 1; w < t; w++ {
		go func() {
			defer wg.Done()
			work(w)
		}()
	}
	work(0)
	wg.Wait()
}
