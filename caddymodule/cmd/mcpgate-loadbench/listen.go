package main

import (
	"fmt"
	"net"

	"github.com/mcpgate/mcpgate/internal/loopback"
)

// listenLoopback listens on addr, which must be a loopback address
// (internal/loopback's rule): the benchmark never serves beyond this machine.
func listenLoopback(addr string) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, err
	}
	if !loopback.HostPort(addr) {
		return nil, fmt.Errorf("%q is not a loopback address", addr)
	}
	return net.Listen("tcp", addr)
}
