package node

import (
	"fmt"
	"net"

	cmtcfg "github.com/cometbft/cometbft/config"
)

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago. Another process may take one before it is used; callers on a
// busy machine retry.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Listen sets cfg to listen on 127.0.0.1 with the given p2p and RPC ports
// and turns off the pprof and gRPC listeners.
func Listen(cfg *cmtcfg.Config, p2pPort, rpcPort int) {
	cfg.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", p2pPort)
	cfg.RPC.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", rpcPort)
	cfg.RPC.GRPCListenAddress = ""
	cfg.RPC.PprofListenAddress = ""
}
