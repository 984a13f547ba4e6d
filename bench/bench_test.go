// Package bench measures iq side by side with mellium.im/xmpp and with a
// plain encoding/xml floor, in one go test run. See scripts/bench.sh and
// BENCHMARKS.md.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
	mstream "mellium.im/xmpp/stream"
)

const (
	echoNS   = "urn:example:echo"
	inFlight = 64
)

// payload is the one the issue measures: <query xmlns='urn:example:echo'><v>hello</v></query>.
func payload() *iq.Element {
	return iq.NewElement(echoNS, "query").Append(iq.NewElement(echoNS, "v").AppendText("hello"))
}

// ---- iq: Caller → stream.Conn → pipe → stream.Conn → Callee → back ----

type iqPair struct {
	client, server *iq.Endpoint
	cc, sc         *stream.Conn
	done           sync.WaitGroup
}

func newIQPair(b *testing.B) *iqPair {
	p1, p2 := net.Pipe()
	p := &iqPair{cc: stream.New(p1), sc: stream.New(p2)}
	p.client = iq.NewEndpoint(p.cc, iq.WithMaxPending(1<<20))
	p.server = iq.NewEndpoint(p.sc, iq.WithMaxInFlight(1024))
	p.server.Callee.Get(echoNS, "query", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return req.Payload, nil
	})
	p.done.Add(2)
	go func() { defer p.done.Done(); _ = p.cc.Serve(context.Background(), p.client, nil) }()
	go func() { defer p.done.Done(); _ = p.sc.Serve(context.Background(), p.server, nil) }()
	b.Cleanup(func() { _ = p.cc.Close(); p.done.Wait() })
	return p
}

func (p *iqPair) roundTrip(b *testing.B, ctx context.Context, pl *iq.Element) {
	res, err := p.client.Caller.Get(ctx, "", pl)
	if err != nil || res == nil {
		b.Fatalf("round trip: %v", err)
	}
}

// ---- mellium: two sessions over net.Pipe, a mux answering the get ----

// nopNegotiator reads the peer's stream header that the test put in front
// of the pipe and declares the session ready, as mellium's own tests do.
func nopNegotiator(state xmpp.SessionState) xmpp.Negotiator {
	return func(ctx context.Context, in, out *mstream.Info, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, interface{}, error) {
		r := s.TokenReader()
		defer r.Close()
		for {
			tok, err := r.Token()
			if err != nil {
				return state | xmpp.Ready, nil, nil, err
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
				out.XMLNS = stanza.NSClient
				return state | xmpp.Ready, nil, nil, nil
			}
		}
	}
}

func melliumSession(b *testing.B, state xmpp.SessionState, origin, location jid.JID, conn net.Conn) *xmpp.Session {
	header := `<stream:stream from="` + location.String() + `" to="` + origin.String() +
		`" id="123" version="1.0" xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">`
	rw := struct {
		io.Reader
		io.Writer
	}{io.MultiReader(strings.NewReader(header), conn), conn}
	s, err := xmpp.NewSession(context.Background(), location, origin, rw, state, nopNegotiator(state))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

type melliumPair struct {
	client *xmpp.Session
	done   sync.WaitGroup
}

func newMelliumPair(b *testing.B) *melliumPair {
	c1, c2 := net.Pipe()
	cj, sj := jid.MustParse("test@example.net/a"), jid.MustParse("example.net")
	p := &melliumPair{}
	p.client = melliumSession(b, 0, cj, sj, c1)
	server := melliumSession(b, xmpp.Received, sj, cj, c2)
	m := mux.New(stanza.NSClient, mux.IQFunc(stanza.GetIQ, xml.Name{Space: echoNS, Local: "query"},
		func(q stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			// The echo: the same payload back, as iq's handler returns it.
			_, err := xmlstream.Copy(t, q.Result(melliumPayload()))
			return err
		}))
	p.done.Add(2)
	go func() { defer p.done.Done(); _ = p.client.Serve(nil) }()
	go func() { defer p.done.Done(); _ = server.Serve(m) }()
	b.Cleanup(func() {
		// Closing the sessions first can deadlock mellium's writers on
		// the unbuffered pipe; cutting the pipe ends both read loops.
		_ = c1.Close()
		_ = c2.Close()
		p.done.Wait()
	})
	return p
}

func melliumPayload() xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData("hello")), xml.StartElement{Name: xml.Name{Space: echoNS, Local: "v"}}),
		xml.StartElement{Name: xml.Name{Space: echoNS, Local: "query"}},
	)
}

func (p *melliumPair) roundTrip(b *testing.B, ctx context.Context) {
	r, err := p.client.SendIQElement(ctx, melliumPayload(), stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse("example.net")})
	if err != nil {
		b.Fatalf("mellium round trip: %v", err)
	}
	// Read the whole response, as our Caller does.
	for {
		if _, err := r.Token(); err != nil {
			break
		}
	}
	_ = r.Close()
}

func BenchmarkRoundTrip(b *testing.B) {
	ctx := context.Background()
	b.Run("iq/seq", func(b *testing.B) {
		p := newIQPair(b)
		pl := payload()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p.roundTrip(b, ctx, pl)
		}
	})
	b.Run("mellium/seq", func(b *testing.B) {
		p := newMelliumPair(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p.roundTrip(b, ctx)
		}
	})
	b.Run("iq/inflight64", func(b *testing.B) {
		p := newIQPair(b)
		pl := payload()
		b.ReportAllocs()
		b.SetParallelism(inFlight / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.roundTrip(b, ctx, pl)
			}
		})
	})
	b.Run("mellium/inflight64", func(b *testing.B) {
		p := newMelliumPair(b)
		b.ReportAllocs()
		b.SetParallelism(inFlight / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.roundTrip(b, ctx)
			}
		})
	})
}

// ---- the encoding/xml floor ----

type floorIQ struct {
	XMLName xml.Name `xml:"iq"`
	Type    string   `xml:"type,attr"`
	ID      string   `xml:"id,attr"`
	To      string   `xml:"to,attr,omitempty"`
	Query   struct {
		XMLName xml.Name `xml:"urn:example:echo query"`
		V       string   `xml:"v"`
	}
}

// decodeStanza reads one top-level element with a Token loop, as a
// stream reader must.
func decodeStanza(d *xml.Decoder) error {
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
}

func BenchmarkFloor(b *testing.B) {
	b.Run("encoding-xml", func(b *testing.B) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		const header = `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">`
		done := make(chan struct{})
		go func() { // the responder: decode the request, encode the result
			defer close(done)
			d := xml.NewDecoder(io.MultiReader(strings.NewReader(header), c2))
			_, _ = d.Token()
			w := bufio.NewWriter(c2)
			for {
				if err := decodeStanza(d); err != nil {
					return
				}
				var res floorIQ
				res.Type, res.ID = "result", "id1"
				res.Query.V = "hello"
				out, _ := xml.Marshal(&res)
				_, _ = w.Write(out)
				if w.Flush() != nil {
					return
				}
			}
		}()
		d := xml.NewDecoder(io.MultiReader(strings.NewReader(header), c1))
		_, _ = d.Token()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var req floorIQ
			req.Type, req.ID, req.To = "get", "id1", "example.net"
			req.Query.V = "hello"
			out, err := xml.Marshal(&req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c1.Write(out); err != nil {
				b.Fatal(err)
			}
			if err := decodeStanza(d); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		c1.Close()
		<-done
	})
}

// ---- Caller bookkeeping: Request + Receive, no XML ----

func BenchmarkCaller(b *testing.B) {
	// The Sender answers at once; its response IQs come from a pool, so
	// that what is measured is the Caller's own cost.
	newCaller := func() *iq.Caller {
		var c *iq.Caller
		pool := sync.Pool{New: func() any { return &iq.IQ{Type: iq.TypeResult} }}
		c = iq.NewCaller(iq.SenderFunc(func(ctx context.Context, req *iq.IQ) error {
			resp := pool.Get().(*iq.IQ)
			resp.ID = req.ID
			c.Receive(resp)
			pool.Put(resp)
			return nil
		}), iq.WithMaxPending(1<<20))
		return c
	}
	ctx := context.Background()
	pl := payload()
	b.Run("seq", func(b *testing.B) {
		c := newCaller()
		req := &iq.IQ{Type: iq.TypeGet, Payload: pl}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := c.Request(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("par", func(b *testing.B) {
		c := newCaller()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := &iq.IQ{Type: iq.TypeGet, Payload: pl}
			for pb.Next() {
				if _, err := c.Request(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// ---- heap per pending request, through the asynchronous form ----

func BenchmarkPending(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c := iq.NewCaller(iq.SenderFunc(func(context.Context, *iq.IQ) error { return nil }),
					iq.WithMaxPending(n+1))
				pl := payload()
				done := make(chan *iq.Call, 1)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				reqs := make([]iq.IQ, n) // allocated before, not counted below
				runtime.GC()
				runtime.ReadMemStats(&before)
				for j := range reqs {
					reqs[j] = iq.IQ{Type: iq.TypeGet, Payload: pl}
					c.Go(context.Background(), &reqs[j], done)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if c.Pending() != n {
					b.Fatalf("pending %d, want %d", c.Pending(), n)
				}
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/pending")
				b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
				b.StopTimer()
				// Close delivers every call to done, each on a goroutine
				// while done is full: drain as they come.
				go func() { _ = c.Close() }()
				for j := 0; j < n; j++ {
					<-done
				}
				runtime.KeepAlive(reqs)
				b.StartTimer()
			}
		})
	}
}

// ---- payload encode and decode, 1 KB and 64 KB ----

// bigPayload builds an element of about size bytes: a query of items with
// attributes and escaped text.
func bigPayload(size int) *iq.Element {
	q := iq.NewElement("urn:example:data", "query")
	for i := 0; q.String() == "" || len(q.String()) < size; i++ {
		q.Append(iq.NewElement("urn:example:data", "item", "id", fmt.Sprint(i), "kind", "a&b").
			AppendText("some <text> & more "))
		if i%16 == 15 && len(q.String()) >= size {
			break
		}
	}
	return q
}

func BenchmarkPayload(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		el := bigPayload(size)
		raw, _ := el.AppendXML(nil)
		name := fmt.Sprintf("%dKB", size>>10)
		b.Run("encode/iq/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			buf := make([]byte, 0, len(raw)*2)
			for i := 0; i < b.N; i++ {
				var err error
				if buf, err = el.AppendXML(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encode/encoding-xml/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			var buf bytes.Buffer
			for i := 0; i < b.N; i++ {
				buf.Reset()
				if err := xml.NewEncoder(&buf).Encode(el); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/iq/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := iq.ParseElement(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/encoding-xml/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var e iq.Element
				if err := xml.Unmarshal(raw, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
