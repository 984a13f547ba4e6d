package bench

import (
	"net"
	"testing"
)

// transport makes the two ends of one connection: client is the side
// that sends requests, server the side that answers them.
type transport struct {
	name  string
	conns func(tb testing.TB) (client, server net.Conn)
}

// transports are the connections every peer is measured over: net.Pipe
// (synchronous, no kernel) and loopback TCP.
var transports = []transport{
	{"pipe", pipeConns},
	{"tcp", tcpConns},
}

func pipeConns(tb testing.TB) (net.Conn, net.Conn) {
	c, s := net.Pipe()
	tb.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c, s
}

// tcpConns connects over 127.0.0.1 on a port of the system's choosing.
func tcpConns(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- s
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	s, ok := <-accepted
	if !ok {
		_ = c.Close()
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c, s
}
