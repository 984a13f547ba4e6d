package stream_test

import (
	"context"
	"encoding/xml"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// readHeader reads the initiator's stream header from r, as a server.
func readHeader(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Copy(), nil
		}
	}
}

func attr(se xml.StartElement, space, local string) (string, bool) {
	for _, a := range se.Attr {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

func TestOpen_ExchangesHeaders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ours     stream.Header
		wantNS   string
		reply    string
		wantPeer stream.Header
	}{
		{
			name:   "client stream",
			ours:   stream.Header{To: "example.com", Version: "1.0"},
			wantNS: iq.NSClient,
			reply: `<?xml version='1.0'?>` + "\n" + `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' ` +
				`id='s-1' from='example.com' version='1.0' xml:lang='en'>`,
			wantPeer: stream.Header{NS: iq.NSClient, ID: "s-1", From: "example.com", Version: "1.0", Lang: "en"},
		},
		{
			name:   "component stream with escaping",
			ours:   stream.Header{NS: iq.NSComponent, To: `c"omp.example<&>`, From: "me", Lang: "fr"},
			wantNS: iq.NSComponent,
			reply: `<stream:stream xmlns:stream="http://etherx.jabber.org/streams" xmlns="jabber:component:accept" ` +
				`from="comp.example" id="3BF96D32">`,
			wantPeer: stream.Header{NS: iq.NSComponent, ID: "3BF96D32", From: "comp.example"},
		},
		{
			name:     "header in pieces after whitespace",
			ours:     stream.Header{To: "x"},
			wantNS:   iq.NSClient,
			reply:    "  \n<stream:stream xmlns='jabber:client'\n xmlns:stream='http://etherx.jabber.org/streams' id='abc'>",
			wantPeer: stream.Header{NS: iq.NSClient, ID: "abc"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			p1, p2 := net.Pipe()
			defer p2.Close()
			got := make(chan xml.StartElement, 1)
			srvErr := make(chan error, 1)
			go func() {
				dec := xml.NewDecoder(p2)
				se, err := readHeader(dec)
				if err != nil {
					srvErr <- err
					return
				}
				got <- se
				// Write the reply in two pieces, to test reassembly.
				half := len(tc.reply) / 2
				if _, err := io.WriteString(p2, tc.reply[:half]); err != nil {
					srvErr <- err
					return
				}
				_, err = io.WriteString(p2, tc.reply[half:])
				srvErr <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			c, err := stream.Open(ctx, p1, tc.ours)
			require.NoError(t, err)
			require.NoError(t, recvErr(t, srvErr, waitLong))
			se := <-got
			assert.Equal(t, stream.NSStream, se.Name.Space)
			assert.Equal(t, "stream", se.Name.Local)
			ns, _ := attr(se, "", "xmlns")
			assert.Equal(t, tc.wantNS, ns)
			to, ok := attr(se, "", "to")
			assert.Equal(t, tc.ours.To != "", ok)
			assert.Equal(t, tc.ours.To, to)
			from, _ := attr(se, "", "from")
			assert.Equal(t, tc.ours.From, from)
			v, _ := attr(se, "", "version")
			assert.Equal(t, tc.ours.Version, v)
			lang, _ := attr(se, "http://www.w3.org/XML/1998/namespace", "lang")
			assert.Equal(t, tc.ours.Lang, lang)
			assert.Equal(t, tc.wantPeer, c.PeerHeader())

			// The Conn is ready for stanzas in the peer's namespace.
			w := newWire(p2, tc.wantNS)
			require.NoError(t, c.SendIQ(ctx, result("after-open")))
			assert.Equal(t, "after-open", w.nextIQ(t).ID)
			require.NoError(t, c.Close())
			w.waitEOF(t)
			assert.True(t, w.sawEndTag())
		})
	}
}

func TestOpen_ThenServe(t *testing.T) {
	leakCheck(t)
	p1, p2 := net.Pipe()
	defer p2.Close()
	go func() {
		dec := xml.NewDecoder(p2)
		if _, err := readHeader(dec); err != nil {
			return
		}
		_, _ = io.WriteString(p2, `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='i'>`)
	}()
	c, err := stream.Open(context.Background(), p1, stream.Header{NS: iq.NSComponent, To: "c.example"})
	require.NoError(t, err)
	ep := iq.NewEndpoint(c)
	defer ep.Close()
	ep.Callee.Get(hNS, "echo", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(hNS, "echo").AppendText(req.Payload.Text()), nil
	})
	served := make(chan error, 1)
	go func() { served <- c.Serve(context.Background(), ep, nil) }()
	w := newWire(p2, iq.NSComponent)
	_, err = io.WriteString(p2, `<iq type='get' id='e1' from='a.example' to='c.example'><echo xmlns='`+hNS+`'>hey</echo></iq>`)
	require.NoError(t, err)
	res := w.nextIQ(t)
	assert.Equal(t, "e1", res.ID)
	assert.Equal(t, "hey", res.Payload.Text())
	_, err = io.WriteString(p2, `</stream:stream>`)
	require.NoError(t, err)
	assert.NoError(t, recvErr(t, served, waitLong))
	w.waitEOF(t)
}

func TestOpen_PeerSendsSomethingElse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply string
	}{
		{"another element", `<foo xmlns='jabber:client'/>`},
		{"stream in the wrong namespace", `<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>`},
		{"unprefixed stream element", `<stream xmlns='jabber:client'>`},
		{"end tag", `</stream:stream>`},
		{"garbage", `HTTP/1.1 400 Bad Request` + "\r\n\r\n"},
		{"not well-formed", `<<<`},
		{"nothing, then EOF", ``},
		{"doctype", `<!DOCTYPE stream>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			p1, p2 := net.Pipe()
			defer p1.Close()
			go func() {
				defer p2.Close()
				dec := xml.NewDecoder(p2)
				if _, err := readHeader(dec); err != nil {
					return
				}
				_, _ = io.WriteString(p2, tc.reply)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			c, err := stream.Open(ctx, p1, stream.Header{To: "example.com"})
			require.Error(t, err)
			assert.Nil(t, c)
			assert.NotErrorIs(t, err, context.DeadlineExceeded, "it fails at once, not at the deadline")
		})
	}
}

func TestOpen_ContextEndsOnSilentPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- nc
				_, _ = io.Copy(io.Discard, nc) // reads, never answers
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer nc.Close()
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			c, err := stream.Open(ctx, nc, stream.Header{To: "example.com"})
			assert.Nil(t, c)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			assert.Less(t, time.Since(start), 3*time.Second)
			nc.Close()
			if srv, ok := <-accepted; ok {
				srv.Close()
			}
		})
	}
}
