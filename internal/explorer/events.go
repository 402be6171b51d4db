package explorer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// BlockEvent is the data of a "block" server-sent event: the chain moved.
type BlockEvent struct {
	Height int64     `json:"height"`
	Time   time.Time `json:"time"`
	Hash   string    `json:"hash"`
}

// events streams server-sent events until the client goes away:
//
//	event: block    data: BlockEvent, at once and whenever the height changes
//	event: traffic  data: the traffic snapshot, every second (gateway attached)
//	: ping          a comment every 15 s to keep proxies from closing the stream
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()

	ctx := r.Context()
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		fl.Flush()
		return nil
	}
	var last int64 = -1
	var lastTraffic, lastPing time.Time
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		if st, err := s.chain.Status(ctx); err == nil && st.SyncInfo.LatestBlockHeight != last {
			last = st.SyncInfo.LatestBlockHeight
			if send("block", BlockEvent{Height: last, Time: st.SyncInfo.LatestBlockTime, Hash: st.SyncInfo.LatestBlockHash.String()}) != nil {
				return
			}
		}
		now := time.Now()
		if s.traffic != nil && now.Sub(lastTraffic) >= time.Second {
			lastTraffic = now
			snap := struct {
				TimeMs int64 `json:"time_ms"`
				TrafficSnapshot
			}{now.UnixMilli(), s.traffic.Traffic()}
			if send("traffic", snap) != nil {
				return
			}
		}
		if now.Sub(lastPing) >= 15*time.Second {
			lastPing = now
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
