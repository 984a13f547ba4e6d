package bench

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
)

// BenchmarkStructure measures what iq's goroutine structure costs by
// itself: an echo of a stanza's bytes, no XML work, one at a time, with
// the hand-offs iq makes on each end or without them.
//
//   - single: one goroutine per side, as the encoding/xml floor has.
//   - iq: a reader on each end; the server's hands each request to a
//     worker, the client's wakes the waiting caller: iq's default.
//   - caller-reads: the caller reads its own reply; the server keeps its
//     worker.
//   - server-answers: the server's reader answers; the client's reader
//     still wakes the caller (iq with Callee.HandleInline).
//   - leader-follower: the server's reader hands the read to the next of a
//     few goroutines, then answers itself; the client's reader wakes the
//     caller.
//   - caller-reads+leader-follower: both of those, so that no goroutine
//     waits on the path of a round trip for another to wake.
//   - single+wake: single, with the server waking another goroutine, which
//     does nothing, after each request: the cost of a wake off the path.
//
// BENCHMARKS.md ("What is left") reads what separates these rows.
func BenchmarkStructure(b *testing.B) {
	for _, tr := range []struct {
		name  string
		conns func(testing.TB) (net.Conn, net.Conn)
	}{{"pipe", pipeConns}, {"tcp", tcpConns}} {
		for _, st := range []struct {
			name        string
			callerReads bool
			serve       func(net.Conn)
		}{
			{"single", true, serveAnswering},
			{"iq", false, serveWithWorker},
			{"caller-reads", true, serveWithWorker},
			{"server-answers", false, serveAnswering},
			{"leader-follower", false, serveLeaderFollower},
			{"caller-reads+leader-follower", true, serveLeaderFollower},
			{"single+wake", true, serveAnsweringWaking},
		} {
			b.Run(tr.name+"/"+st.name, func(b *testing.B) {
				c, s := tr.conns(b)
				go st.serve(s)
				echo := callerReading(c)
				if !st.callerReads {
					echo = callerWoken(c)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := echo(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// structureMsg is the bytes echoed: about an iq get with a small payload.
var structureMsg = []byte("<iq type='get' id='abcdefgh' to='x@y'><query xmlns='urn:example:echo'><v>hello</v></query></iq>")

// checkEcho reports whether got is structureMsg.
func checkEcho(got []byte) error {
	if !bytes.Equal(got, structureMsg) {
		return fmt.Errorf("echo: got %q", got)
	}
	return nil
}

// callerReading returns an echo that writes and reads on the caller's
// goroutine.
func callerReading(c net.Conn) func() error {
	buf := make([]byte, len(structureMsg))
	return func() error {
		if _, err := c.Write(structureMsg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		return checkEcho(buf)
	}
}

// callerWoken returns an echo whose reply a reader goroutine reads and
// hands to the caller over a channel.
func callerWoken(c net.Conn) func() error {
	replies := make(chan []byte)
	go func() {
		defer close(replies)
		for {
			buf := make([]byte, len(structureMsg))
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			replies <- buf
		}
	}()
	return func() error {
		if _, err := c.Write(structureMsg); err != nil {
			return err
		}
		got, ok := <-replies
		if !ok {
			return io.ErrUnexpectedEOF
		}
		return checkEcho(got)
	}
}

// serveAnswering reads each request and writes it back, on one goroutine.
func serveAnswering(s net.Conn) {
	buf := make([]byte, len(structureMsg))
	for {
		if _, err := io.ReadFull(s, buf); err != nil {
			return
		}
		if _, err := s.Write(buf); err != nil {
			return
		}
	}
}

// serveAnsweringWaking is serveAnswering waking another goroutine after
// each request, which only goes back to waiting.
func serveAnsweringWaking(s net.Conn) {
	wake := make(chan struct{})
	defer close(wake)
	go func() {
		for range wake {
		}
	}()
	buf := make([]byte, len(structureMsg))
	for {
		if _, err := io.ReadFull(s, buf); err != nil {
			return
		}
		wake <- struct{}{}
		if _, err := s.Write(buf); err != nil {
			return
		}
	}
}

// serveWithWorker reads each request and hands it to a worker goroutine,
// which writes it back.
func serveWithWorker(s net.Conn) {
	work := make(chan []byte)
	go func() {
		for m := range work {
			if _, err := s.Write(m); err != nil {
				return
			}
		}
	}()
	defer close(work)
	for {
		buf := make([]byte, len(structureMsg))
		if _, err := io.ReadFull(s, buf); err != nil {
			return
		}
		work <- buf
	}
}

// serveLeaderFollower runs four goroutines that take turns to read: the
// one that read a request passes the turn on, then writes it back.
func serveLeaderFollower(s net.Conn) {
	turn := make(chan struct{}, 1)
	for range 4 {
		go func() {
			buf := make([]byte, len(structureMsg))
			for range turn {
				if _, err := io.ReadFull(s, buf); err != nil {
					close(turn) // the turn is ours: nobody else sends
					return
				}
				m := bytes.Clone(buf)
				turn <- struct{}{}
				if _, err := s.Write(m); err != nil {
					return
				}
			}
		}()
	}
	turn <- struct{}{}
}
