package bench

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"

	"github.com/xmpp-iq/iq"
	"mellium.im/xmlstream"
)

const (
	echoNS    = "urn:example:echo"
	dataNS    = "urn:example:data"
	weatherNS = "urn:example:weather"
	wrongNS   = "urn:example:wrong" // answered wrongly, to test the checks
)

// smallPayload is the element the RoundTrip group echoes:
// <query xmlns='urn:example:echo'><v>hello</v></query>.
func smallPayload() *iq.Element {
	return iq.NewElement(echoNS, "query").Append(iq.NewElement(echoNS, "v").AppendText("hello"))
}

// sizedPayload builds a query of items, with attributes and text that
// needs escaping, whose encoding is at least size bytes and at most one
// item longer.
func sizedPayload(size int) *iq.Element {
	item := func(i int) *iq.Element {
		return iq.NewElement(dataNS, "item", "id", fmt.Sprintf("%06d", i), "kind", "a&b").
			AppendText("some <text> & more ")
	}
	q := iq.NewElement(dataNS, "query").Append(item(0))
	one := len(mustXML(q))
	q.Append(item(1))
	each := len(mustXML(q)) - one // every id has six digits: each item costs the same
	n := 1
	if size > one {
		n += (size - one + each - 1) / each
	}
	q.Content = q.Content[:1]
	for i := 1; i < n; i++ {
		q.Append(item(i))
	}
	return q
}

// dataQuery is sizedPayload as a struct, for the Size group's typed rows.
type dataQuery struct {
	XMLName xml.Name `xml:"urn:example:data query"`
	Items   []struct {
		ID   string `xml:"id,attr"`
		Kind string `xml:"kind,attr"`
		Text string `xml:",chardata"`
	} `xml:"item"`
}

// mustXML is e encoded, as iq writes it.
func mustXML(e *iq.Element) []byte {
	b, err := e.AppendXML(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// elementTokens is e as the tokens a mellium user would hand to
// SendIQElement: built once, replayed by tokenSlice without allocating.
func elementTokens(e *iq.Element) []xml.Token {
	var toks []xml.Token
	var walk func(e *iq.Element)
	walk = func(e *iq.Element) {
		start := xml.StartElement{Name: e.Name, Attr: e.Attr}
		toks = append(toks, start)
		for _, n := range e.Content {
			if n.Element != nil {
				walk(n.Element)
			} else if n.Text != "" {
				toks = append(toks, xml.CharData(n.Text))
			}
		}
		toks = append(toks, start.End())
	}
	walk(e)
	return toks
}

// tokenSlice replays tokens as an xml.TokenReader.
type tokenSlice struct {
	toks []xml.Token
	i    int
}

func (r *tokenSlice) Token() (xml.Token, error) {
	if r.i >= len(r.toks) {
		return nil, io.EOF
	}
	r.i++
	return r.toks[r.i-1], nil
}

// tokenStats is what a reader of a payload's tokens can check cheaply:
// how many elements it had and how many bytes of text.
type tokenStats struct{ elements, text int }

func statsOf(toks []xml.Token) tokenStats {
	var s tokenStats
	for _, t := range toks {
		switch t := t.(type) {
		case xml.StartElement:
			s.elements++
		case xml.CharData:
			s.text += len(t)
		}
	}
	return s
}

// forecast is the Typed group's struct: attributes, a child's text and a
// repeated child, decoded on both ends.
type forecast struct {
	XMLName xml.Name `xml:"urn:example:weather forecast"`
	City    string   `xml:"city,attr"`
	Days    int      `xml:"days,attr"`
	Sky     string   `xml:"sky"`
	Temps   []int    `xml:"temp"`
}

func sampleForecast() forecast {
	return forecast{
		XMLName: xml.Name{Space: weatherNS, Local: "forecast"},
		City:    "Verona", Days: 3, Sky: "clear & bright",
		Temps: []int{21, 23, 19},
	}
}

// TokenReader encodes f by hand, as mellium's own payload types do: it is
// mellium's fastest way to send a struct (its EncodeIQ goes through
// xml.Marshal and decodes the bytes back into tokens).
func (f *forecast) TokenReader() xml.TokenReader {
	inner := make([]xml.TokenReader, 0, 1+len(f.Temps))
	inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(f.Sky)),
		xml.StartElement{Name: xml.Name{Local: "sky"}}))
	for _, t := range f.Temps {
		inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(strconv.Itoa(t))),
			xml.StartElement{Name: xml.Name{Local: "temp"}}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{
		Name: xml.Name{Space: weatherNS, Local: "forecast"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "city"}, Value: f.City},
			{Name: xml.Name{Local: "days"}, Value: strconv.Itoa(f.Days)},
		},
	})
}

// sameForecast is the cheap check of a typed echo.
func sameForecast(a, b *forecast) bool {
	if a.City != b.City || a.Days != b.Days || a.Sky != b.Sky || len(a.Temps) != len(b.Temps) {
		return false
	}
	for i := range a.Temps {
		if a.Temps[i] != b.Temps[i] {
			return false
		}
	}
	return true
}
