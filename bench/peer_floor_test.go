package bench

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// floorIQ is the floor's stanza: the same <iq/> with the same payload as
// the RoundTrip group's, written by encoding/xml from a struct.
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

const floorHeader = `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">`

// floorStanza is what the floor reads of one stanza.
type floorStanza struct{ id, v string }

// readFloorStanza reads one top-level element with a Token loop, as a
// stream reader must, keeping the iq's id and the text of <v/>.
func readFloorStanza(d *xml.Decoder) (floorStanza, error) {
	var s floorStanza
	depth := 0
	inV := false
	for {
		tok, err := d.Token()
		if err != nil {
			return s, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				for _, a := range tok.Attr {
					if a.Name.Local == "id" {
						s.id = a.Value
					}
				}
			}
			inV = tok.Name.Local == "v"
		case xml.CharData:
			if inV {
				s.v += string(tok)
			}
		case xml.EndElement:
			inV = false
			depth--
			if depth == 0 {
				return s, nil
			}
		}
	}
}

// floorPeer is the round trip written with encoding/xml alone: one
// xml.Encoder per connection end, reused for every stanza, and an
// xml.Decoder read with a Token loop. It is what plain encoding/xml costs
// for the exchange iq makes, without ids matched to waiting callers, a
// handler table or any checking; it answers one request at a time.
type floorPeer struct {
	enc  *xml.Encoder
	dec  *xml.Decoder
	next int
}

func newFloorPeer(tb testing.TB, client, server net.Conn) *floorPeer {
	done := make(chan struct{})
	go func() { // the responder: read a request, write its result
		defer close(done)
		d := xml.NewDecoder(io.MultiReader(strings.NewReader(floorHeader), server))
		if _, err := d.Token(); err != nil {
			return
		}
		enc := xml.NewEncoder(server)
		var res floorIQ
		res.Type = "result"
		for {
			req, err := readFloorStanza(d)
			if err != nil {
				return
			}
			res.ID, res.Query.V = req.id, req.v
			if enc.Encode(&res) != nil { // Encode flushes
				return
			}
		}
	}()
	p := &floorPeer{
		enc: xml.NewEncoder(client),
		dec: xml.NewDecoder(io.MultiReader(strings.NewReader(floorHeader), client)),
	}
	tb.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
		<-done
	})
	if _, err := p.dec.Token(); err != nil {
		tb.Fatalf("floor header: %v", err)
	}
	return p
}

// echo sends v and returns the stanza read back.
func (p *floorPeer) echo(_ context.Context, v string) (floorStanza, error) {
	p.next++
	var req floorIQ
	req.Type, req.ID, req.To = "get", strconv.Itoa(p.next), "example.net"
	req.Query.V = v
	if err := p.enc.Encode(&req); err != nil {
		return floorStanza{}, err
	}
	res, err := readFloorStanza(p.dec)
	if err == nil && res.id != req.ID {
		err = fmt.Errorf("id %q, want %q", res.id, req.ID)
	}
	return res, err
}

func (p *floorPeer) echoOp() func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := p.echo(ctx, "hello")
		if err != nil {
			return fmt.Errorf("floor echo: %w", err)
		}
		if res.v != "hello" {
			return fmt.Errorf("floor echo: got %q, want hello", res.v)
		}
		return nil
	}
}
