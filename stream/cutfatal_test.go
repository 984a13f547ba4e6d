package stream

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// embedsTLS is a caller's wrapper around a *tls.Conn, which keeps its
// methods.
type embedsTLS struct{ *tls.Conn }

// wrapsConn is a wrapper that hides what it wraps: taken at net.Conn's
// word.
type wrapsConn struct{ net.Conn }

// layered says it is a layer over another connection, as crypto/tls does.
type layered struct{ net.Conn }

func (l layered) NetConn() net.Conn { return l.Conn }

// noDeadlines is a transport without write deadlines.
type noDeadlines struct{ io.ReadWriteCloser }

// Which transports a Write is never cut short on (see cutIsFatal).
func TestCutIsFatal(t *testing.T) {
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tcp, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for _, tc := range []struct {
		name  string
		rwc   io.ReadWriteCloser
		fatal bool
	}{
		{"*tls.Conn", tls.Client(p1, &tls.Config{}), true},
		{"embeds *tls.Conn", embedsTLS{tls.Client(p1, &tls.Config{})}, true},
		{"a layer with NetConn", layered{p1}, true},
		{"net.Pipe", p1, false},
		{"*net.TCPConn", tcp, false},
		{"a wrapper of a net.Conn", wrapsConn{p1}, false},
		{"no write deadlines", noDeadlines{p1}, false},
	} {
		if got := cutIsFatal(tc.rwc); got != tc.fatal {
			t.Errorf("%s: cutIsFatal = %v, want %v", tc.name, got, tc.fatal)
		}
	}
}
