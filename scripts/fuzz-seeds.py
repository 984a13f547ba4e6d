#!/usr/bin/env python3
"""Writes the fuzz seed corpora (testdata/fuzz/) from real stanzas: RFC 6120
examples and replies Prosody 0.12 sends. Run from the repository root."""
import os

STANZAS = [
    # RFC 6120 §8.2.3 / §8.3 style exchanges.
    "<iq from='juliet@example.com/balcony' id='rg1' type='get'><query xmlns='jabber:iq:roster'/></iq>",
    "<iq from='example.com' id='rg1' to='juliet@example.com/balcony' type='result'><query xmlns='jabber:iq:roster' ver='ver7'><item jid='nurse@example.com'/><item jid='romeo@example.net'/></query></iq>",
    "<iq from='juliet@example.com/balcony' id='rs1' type='set'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com'/></query></iq>",
    "<iq from='example.com' id='rs1' to='juliet@example.com/balcony' type='result'/>",
    "<iq id='ix1' type='error' from='example.com' to='juliet@example.com/balcony'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
    "<iq id='ix2' type='error'><error type='modify' by='example.com'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Incorrect number of children for IQ stanza</text></error></iq>",
    "<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>",
    "<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@im.example.com/balcony</jid></bind></iq>",
    # Prosody 0.12.3 replies, as observed on loopback.
    "<iq xml:lang='en' type='error' id='c1' from='echo.localhost' to='alice@localhost/r'><error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Component unavailable</text><not-connected xmlns='xmpp:prosody.im/protocol/component'/></error></iq>",
    "<iq type='result' id='v1' from='localhost' to='alice@localhost/r'><query xmlns='jabber:iq:version'><name>Prosody</name><version>0.12.3</version><os>Linux</os></query></iq>",
    "<iq type='result' id='p1' from='localhost' to='alice@localhost/r'/>",
    "<iq type='error' id='n1' from='carol@localhost/offline' to='alice@localhost/r'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
    "<iq type='error' id='g1'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:romeo@example.net</gone></error></iq>",
    "<iq type='get' id='d1' to='echo.localhost' from='alice@localhost/r'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    "<iq type='get' id='z'><a xmlns='u:a'/><b xmlns='u:a'/></iq>",
    "<iq type='get' id='t'>  text only  </iq>",
    "<iq xmlns='jabber:component:accept' type='get' id='e' to='echo.localhost'><echo xmlns='urn:example:echo'>a &amp; b &lt;c&gt; &#x9;</echo></iq>",
    "<iq type='set' id='m'><q xmlns='u:1' xmlns:p='u:2' p:attr='v' xml:lang='fr'>x<p:b/>y<![CDATA[<raw>]]><c xmlns=''>z</c></q></iq>",
]

ERRORS = [
    "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    "<error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Component unavailable</text><not-connected xmlns='xmpp:prosody.im/protocol/component'/></error>",
    "<error type='modify'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>first</text><too-many-subscriptions xmlns='http://jabber.org/protocol/pubsub#errors'/><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    "<error type='cancel' by='example.com'><redirect xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:other@example.com</redirect></error>",
    "<error><no-such-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
]

ELEMENTS = [s[s.index(">") + 1 : s.rindex("</iq>")] for s in STANZAS if "</iq>" in s and s.index(">") + 1 < s.rindex("</iq>")]
ELEMENTS = [e for e in ELEMENTS if e.startswith("<")]

STREAM_HEADER = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
STREAMS = [
    "".join(STANZAS[:6]),
    STANZAS[0] + " \n " + "<message from='a@b/c' type='error' id='rg1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>" + "<presence/></stream:stream>",
    "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text></stream:error></stream:stream>",
    "<iq type='get' id='x'><q xmlns='u:x'></z></iq>",
    "<!-- comment --><iq type='get' id='y'><q xmlns='u:x'/></iq>",
    "<iq type='get' id='big'><q xmlns='u:x'>" + "A" * 5000 + "</q></iq>",
]


def write(target, items):
    d = os.path.join("testdata", "fuzz", target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(items):
        b = s.encode()
        lit = "".join(chr(c) if 32 <= c < 127 and chr(c) not in '"\\' else "\\x%02x" % c for c in b)
        with open(os.path.join(d, "seed-%02d" % i), "w") as f:
            f.write('go test fuzz v1\n[]byte("%s")\n' % lit)


write("FuzzIQUnmarshal", STANZAS)
write("FuzzElementRoundTrip", ELEMENTS)
write("FuzzStanzaError", ERRORS)
os.makedirs("stream/testdata/fuzz", exist_ok=True)
os.chdir("stream")
write("FuzzConnRead", STREAMS)
