package xmldec

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const streamHeader = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`

var seeds = []string{
	`<iq type='get' id='ping1' to='example.com' from='juliet@example.com/balcony'><ping xmlns='urn:xmpp:ping'/></iq>`,
	`<iq type='result' id='roster_1' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver11'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item><item jid='mercutio@example.com' name='Mercutio' subscription='from'/></query></iq>`,
	`<message from='juliet@example.com/balcony' id='ktx72v49' to='romeo@example.net' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread></message>`,
	`<presence from='romeo@example.net/orchard' xml:lang='en'><show>dnd</show><status>Wooing Juliet</status><status xml:lang='cs'>Dvo&#x0159;&#237;m se Julii</status><priority>1</priority></presence>`,
	`<iq type='error' id='e1'><query xmlns='jabber:iq:version'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no &lt;way&gt; &amp; &apos;never&apos; &quot;x&quot;</text></error></iq>`,
	`<iq type="set" id="x"><p:data xmlns:p="urn:example:p" p:attr="v" q:unbound="u"><![CDATA[<raw> & stuff]]>tail<!-- skip -->more<?pi data?>end</p:data></iq>`,
	"<message>\r\nline1\rline2\r\n<body a='x\ty\r\nz'>&#13;&#xD;\r</body></message>",
	`<a xmlns='urn:a'><b xmlns=''><c/></b><xmlns/><d:e xmlns:d='urn:d'/></a>`,
	` <iq id='1'/> <iq id='2'></iq>`,
	`<iq id='1'/></stream:stream>`,
	`<?xml version='1.0'?><iq/>`,
	`<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
	`<a>]]></a>`,
	`<a b='1' b='2'/>`,
	`<a><b></a></b>`,
	`<a x=y/>`,
	`<a>&bogus;</a>`,
	`<a>&#0;</a>`,
	`<a>&#xD800;</a>`,
	"<a>\xff</a>",
	`<:a/>`,
	`<a:b:c/>`,
	`<!DOCTYPE a [<!ENTITY x "y">]><a/>`,
	`<a><!-- c -- d --></a>`,
	`<a xmlns:p='u'><p:b></b></a>`,
	`<é ñ='ü'>ß</é>`,
	`<iq type='get' id='1'><p:y/></iq>`,
	`<iq type='get' id='1' type='result'/>`,
	`<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>`,
	`<a xmlns:p='u' xmlns:p='v'/>`,
	`<a xmlns='u' xmlns='v'/>`,
	`<a xmlns:p=''><p:b/></a>`,
	`<a xmlns:p='u'><b xmlns:p=''><p:c/></b></a>`,
	`<xmlns:a/>`,
	`<a xmlns:p='u'><b/></a><p:c/>`,
	`<a b='1' c='2' d='3' e='4' f='5' g='6' h='7' i='8' j='9' k='10' l='11' m='12' n='13' o='14' p='15' q='16' r='17' b='18'/>`,
	`<?xml version='1.1'?><a/>`,
	`<?xml version='1.0' encoding='ISO-8859-1'?><a/>`,
}

func FuzzDifferential(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := differ(data); err != nil {
			t.Fatal(err)
		}
	})
}

// differ compares the Decoder with the reference on data read four ways:
// as a document, as a stream (with and without a header before it, with a
// small limit and one byte per read), and with Decode. The reference is
// encoding/xml, corrected by the oracle strict where the Decoder refuses
// what encoding/xml takes (undeclared prefixes, duplicate attributes).
func differ(data []byte) error {
	prefixed := append([]byte(streamHeader), data...)
	small := len(streamHeader) + 1
	if len(data) > 0 {
		small += int(data[0]) % 64
	}
	for _, c := range []struct {
		name    string
		in      []byte
		max     int
		oneByte bool
	}{
		{"raw", data, 0, false},
		{"stream", prefixed, 1 << 20, false},
		{"small", prefixed, small, true},
	} {
		want, ends, werr := refStream(c.in, c.max)
		want, werr = strict(c.in, want, ends, werr)
		got, gerr := ourStream(c.in, c.max, c.oneByte)
		if errClass(werr) != errClass(gerr) {
			return fmt.Errorf("%s: error: encoding/xml %q, xmldec %q\nitems: %v\n       %v", c.name, errClass(werr), errClass(gerr), want, got)
		}
		if len(want) != len(got) {
			return fmt.Errorf("%s: %d items from encoding/xml, %d from xmldec\n%v\n%v", c.name, len(want), len(got), want, got)
		}
		for i := range want {
			if !reflect.DeepEqual(want[i], got[i]) {
				return fmt.Errorf("%s: item %d:\nencoding/xml %v\nxmldec       %v", c.name, i, want[i], got[i])
			}
		}
	}
	want, end, werr := refDecode(data)
	if _, serr := strict(data, nil, []int64{end}, werr); serr != werr {
		want, werr = nil, serr
	}
	var tr Tree
	gerr := Decode(data, &tr)
	if errClass(werr) != errClass(gerr) {
		return fmt.Errorf("decode: error: encoding/xml %q, xmldec %q", errClass(werr), errClass(gerr))
	}
	if werr == nil && !reflect.DeepEqual(want, tr.Root) {
		return fmt.Errorf("decode:\nencoding/xml %v\nxmldec       %v", dump(want), dump(tr.Root))
	}
	return nil
}

func TestSeeds(t *testing.T) {
	for _, s := range seeds {
		if err := differ([]byte(s)); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

var _ = strings.Repeat
