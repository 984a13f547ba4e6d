package iq_test

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

const (
	stanzaNSRoster = "jabber:iq:roster"
	stanzaNSPubsub = "http://jabber.org/protocol/pubsub#errors"
)

// stanzaDecode unmarshals s into a fresh IQ.
func stanzaDecode(t *testing.T, s string) *iq.IQ {
	t.Helper()
	var q iq.IQ
	require.NoError(t, xml.Unmarshal([]byte(s), &q), "decoding %s", s)
	return &q
}

// stanzaRequireEqual checks that two IQs hold the same fields, payloads
// compared with (*Element).Equal, and the same number of children.
func stanzaRequireEqual(t *testing.T, want, got *iq.IQ) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID, "ID")
	assert.Equal(t, want.To, got.To, "To")
	assert.Equal(t, want.From, got.From, "From")
	assert.Equal(t, want.Lang, got.Lang, "Lang")
	assert.Equal(t, want.Type, got.Type, "Type")
	assert.Equal(t, want.NumChildren(), got.NumChildren(), "NumChildren")
	assert.True(t, want.Payload.Equal(got.Payload), "Payload: want %v, got %v", want.Payload, got.Payload)
	if want.Error == nil || got.Error == nil {
		assert.Equal(t, want.Error == nil, got.Error == nil, "Error presence: want %v, got %v", want.Error, got.Error)
		return
	}
	assert.Equal(t, want.Error.Type, got.Error.Type, "Error.Type")
	assert.Equal(t, want.Error.Condition, got.Error.Condition, "Error.Condition")
	assert.Equal(t, want.Error.Text, got.Error.Text, "Error.Text")
	assert.Equal(t, want.Error.Lang, got.Error.Lang, "Error.Lang")
	assert.Equal(t, want.Error.By, got.Error.By, "Error.By")
	assert.Equal(t, want.Error.Target, got.Error.Target, "Error.Target")
	assert.True(t, want.Error.App.Equal(got.Error.App), "Error.App: want %v, got %v", want.Error.App, got.Error.App)
}

func TestIQUnmarshalNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "no namespace", in: `<iq type='get' id='1'><q xmlns='urn:x'/></iq>`},
		{name: "jabber:client", in: `<iq xmlns='jabber:client' type='get' id='1'><q xmlns='urn:x'/></iq>`},
		{name: "jabber:server", in: `<iq xmlns='jabber:server' type='get' id='1'><q xmlns='urn:x'/></iq>`},
		{name: "jabber:component:accept", in: `<iq xmlns='jabber:component:accept' type='get' id='1'><q xmlns='urn:x'/></iq>`},
		{name: "prefixed jabber:client", in: `<c:iq xmlns:c='jabber:client' type='get' id='1'><q xmlns='urn:x'/></c:iq>`},
		{name: "other namespace", in: `<iq xmlns='urn:not:a:stream' type='get' id='1'><q xmlns='urn:x'/></iq>`, wantErr: true},
		{name: "stream namespace", in: `<iq xmlns='http://etherx.jabber.org/streams' type='get' id='1'/>`, wantErr: true},
		{name: "message element", in: `<message xmlns='jabber:client' type='chat' id='1'><body>hi</body></message>`, wantErr: true},
		{name: "presence element", in: `<presence/>`, wantErr: true},
		{name: "IQ upper case", in: `<IQ type='get' id='1'/>`, wantErr: true},
		{name: "not well-formed", in: `<iq type='get' id='1'><q xmlns='urn:x'></iq>`, wantErr: true},
		{name: "truncated", in: `<iq type='get' id='1'><q xmlns='urn:x'/>`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q iq.IQ
			err := xml.Unmarshal([]byte(tt.in), &q)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "1", q.ID)
			assert.Equal(t, iq.TypeGet, q.Type)
			require.NotNil(t, q.Payload)
			assert.Equal(t, xml.Name{Space: "urn:x", Local: "q"}, q.Payload.Name)
			assert.NoError(t, q.Validate())
		})
	}
}

func TestIQUnmarshalLenient(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		wantID       string
		wantType     iq.Type
		wantChildren int
		wantPayload  string // local name of the payload, "" for none
		wantError    bool
	}{
		{name: "get no children", in: `<iq type='get' id='a'/>`, wantID: "a", wantType: iq.TypeGet},
		{name: "get two children", in: `<iq type='get' id='a'><x xmlns='u:1'/><y xmlns='u:2'/></iq>`, wantID: "a", wantType: iq.TypeGet, wantChildren: 2, wantPayload: "x"},
		{name: "set three children", in: `<iq type='set' id='a'><x xmlns='u:1'/><y xmlns='u:2'/><z xmlns='u:3'/></iq>`, wantID: "a", wantType: iq.TypeSet, wantChildren: 3, wantPayload: "x"},
		{name: "text only", in: `<iq type='get' id='a'>just text</iq>`, wantID: "a", wantType: iq.TypeGet},
		{name: "no id no type", in: `<iq/>`},
		{name: "unknown type", in: `<iq type='bogus' id='z'><x xmlns='u:1'/></iq>`, wantID: "z", wantType: "bogus", wantChildren: 1, wantPayload: "x"},
		{name: "error without error child", in: `<iq type='error' id='e'/>`, wantID: "e", wantType: iq.TypeError},
		{name: "error with payload and error", in: `<iq type='error' id='e'><x xmlns='u:1'/><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, wantID: "e", wantType: iq.TypeError, wantChildren: 1, wantPayload: "x", wantError: true},
		{name: "error child on a result is a payload", in: `<iq type='result' id='r'><error type='cancel'/></iq>`, wantID: "r", wantType: iq.TypeResult, wantChildren: 1, wantPayload: "error"},
		{name: "error in foreign namespace is a payload", in: `<iq type='error' id='e'><error xmlns='urn:other'/></iq>`, wantID: "e", wantType: iq.TypeError, wantChildren: 1, wantPayload: "error"},
		{name: "second error is a child", in: `<iq type='error' id='e'><error type='cancel'/><error type='wait'/></iq>`, wantID: "e", wantType: iq.TypeError, wantChildren: 1, wantPayload: "error", wantError: true},
		{name: "comments and PIs ignored", in: `<iq type='get' id='c'><!-- c --><?pi x?><x xmlns='u:1'/><!-- d --></iq>`, wantID: "c", wantType: iq.TypeGet, wantChildren: 1, wantPayload: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := stanzaDecode(t, tt.in)
			assert.Equal(t, tt.wantID, q.ID)
			assert.Equal(t, tt.wantType, q.Type)
			assert.Equal(t, tt.wantChildren, q.NumChildren())
			if tt.wantPayload == "" {
				assert.Nil(t, q.Payload)
			} else {
				require.NotNil(t, q.Payload)
				assert.Equal(t, tt.wantPayload, q.Payload.Name.Local)
			}
			assert.Equal(t, tt.wantError, q.Error != nil, "Error: %v", q.Error)
		})
	}
}

func TestIQValidate(t *testing.T) {
	payload := func() *iq.Element { return iq.NewElement("u:1", "x") }
	tests := []struct {
		name     string
		in       string // decoded when set
		iq       *iq.IQ // used when in is empty
		wantErrs []string
	}{
		{name: "valid get", in: `<iq type='get' id='1'><x xmlns='u:1'/></iq>`},
		{name: "valid set", in: `<iq type='set' id='1'><x xmlns='u:1'/></iq>`},
		{name: "valid empty result", in: `<iq type='result' id='1'/>`},
		{name: "valid result with payload", in: `<iq type='result' id='1'><x xmlns='u:1'/></iq>`},
		{name: "valid error", in: `<iq type='error' id='1'><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		{name: "valid error echoing request", in: `<iq type='error' id='1'><x xmlns='u:1'/><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		{name: "missing id", in: `<iq type='get'><x xmlns='u:1'/></iq>`, wantErrs: []string{"missing id"}},
		{name: "missing type", in: `<iq id='1'><x xmlns='u:1'/></iq>`, wantErrs: []string{"missing type"}},
		{name: "unknown type", in: `<iq id='1' type='GET'><x xmlns='u:1'/></iq>`, wantErrs: []string{`unknown type "GET"`}},
		{name: "get without child", in: `<iq type='get' id='1'/>`, wantErrs: []string{"exactly one child"}},
		{name: "get with text only", in: `<iq type='get' id='1'>hello</iq>`, wantErrs: []string{"exactly one child"}},
		{name: "set with two children", in: `<iq type='set' id='1'><x xmlns='u:1'/><y xmlns='u:1'/></iq>`, wantErrs: []string{"exactly one child"}},
		{name: "get with three children", in: `<iq type='get' id='1'><x xmlns='u:1'/><y xmlns='u:1'/><z xmlns='u:1'/></iq>`, wantErrs: []string{"has 3"}},
		{name: "result with two children", in: `<iq type='result' id='1'><x xmlns='u:1'/><y xmlns='u:1'/></iq>`, wantErrs: []string{"at most one"}},
		{name: "error without error child", in: `<iq type='error' id='1'/>`, wantErrs: []string{"without an <error/>"}},
		{name: "error with two extra children", in: `<iq type='error' id='1'><x xmlns='u:1'/><y xmlns='u:1'/><error type='cancel'/></iq>`, wantErrs: []string{"at most one child besides"}},
		{name: "several problems", in: `<iq type='set'><x xmlns='u:1'/><y xmlns='u:1'/></iq>`, wantErrs: []string{"missing id", "exactly one child"}},
		{name: "error type: missing id, no error, two children", in: `<iq type='error'><x xmlns='u:1'/><y xmlns='u:1'/></iq>`, wantErrs: []string{"missing id", "without an <error/>", "at most one child besides"}},
		{name: "zero value", iq: &iq.IQ{}, wantErrs: []string{"missing id", "missing type"}},
		{name: "built get", iq: &iq.IQ{ID: "b", Type: iq.TypeGet, Payload: payload()}},
		{name: "built get without payload", iq: &iq.IQ{ID: "b", Type: iq.TypeGet}, wantErrs: []string{"exactly one child"}},
		{name: "built error", iq: &iq.IQ{ID: "b", Type: iq.TypeError, Error: iq.NewError(iq.Cancel, iq.BadRequest, "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.iq
			if tt.in != "" {
				q = stanzaDecode(t, tt.in)
			}
			err := q.Validate()
			if len(tt.wantErrs) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.ErrorIs(t, err, iq.ErrInvalid)
			joined, ok := err.(interface{ Unwrap() []error })
			require.True(t, ok, "Validate's error %T should come from errors.Join", err)
			parts := joined.Unwrap()
			require.Len(t, parts, len(tt.wantErrs), "problems: %v", err)
			for i, want := range tt.wantErrs {
				assert.ErrorIs(t, parts[i], iq.ErrInvalid, "problem %d", i)
				assert.Contains(t, parts[i].Error(), want, "problem %d", i)
			}
		})
	}
}

func TestIQNumChildren(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{name: "none", in: `<iq type='result' id='1'/>`, want: 0},
		{name: "text only", in: `<iq type='result' id='1'> text </iq>`, want: 0},
		{name: "one", in: `<iq type='result' id='1'><x xmlns='u:1'/></iq>`, want: 1},
		{name: "one with grandchildren", in: `<iq type='result' id='1'><x xmlns='u:1'><y/><z/></x></iq>`, want: 1},
		{name: "two", in: `<iq type='result' id='1'><x xmlns='u:1'/><y xmlns='u:1'/></iq>`, want: 2},
		{name: "three with text between", in: `<iq type='get' id='1'>a<x xmlns='u:1'/>b<y xmlns='u:1'/>c<z xmlns='u:1'/>d</iq>`, want: 3},
		{name: "error child not counted", in: `<iq type='error' id='1'><error type='cancel'/></iq>`, want: 0},
		{name: "error child not counted beside payload", in: `<iq type='error' id='1'><x xmlns='u:1'/><error type='cancel'/></iq>`, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, stanzaDecode(t, tt.in).NumChildren())
		})
	}
	t.Run("built", func(t *testing.T) {
		assert.Equal(t, 0, (&iq.IQ{}).NumChildren())
		assert.Equal(t, 1, (&iq.IQ{Payload: iq.NewElement("u:1", "x")}).NumChildren())
	})
}

func TestIQLang(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "en", in: `<iq type='get' id='1' xml:lang='en'><x xmlns='u:1'/></iq>`, want: "en"},
		{name: "region", in: `<iq type='get' id='1' xml:lang='pt-BR'><x xmlns='u:1'/></iq>`, want: "pt-BR"},
		{name: "absent", in: `<iq type='get' id='1'><x xmlns='u:1'/></iq>`, want: ""},
		{name: "unqualified lang is not xml:lang", in: `<iq type='get' id='1' lang='de'><x xmlns='u:1'/></iq>`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := stanzaDecode(t, tt.in)
			assert.Equal(t, tt.want, q.Lang)
			out, err := xml.Marshal(q)
			require.NoError(t, err)
			assert.Equal(t, tt.want, stanzaDecode(t, string(out)).Lang, "after xml.Marshal: %s", out)
			assert.Equal(t, tt.want, stanzaDecode(t, q.String()).Lang, "after String: %s", q.String())
			if tt.want != "" {
				assert.Contains(t, q.String(), `xml:lang="`+tt.want+`"`)
			}
		})
	}
}

// TestIQRFCExamples decodes stanzas modelled on RFC 6120 §8.2.3 and §8.3.
func TestIQRFCExamples(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		wantID      string
		wantType    iq.Type
		wantFrom    string
		wantTo      string
		wantPayload xml.Name
		wantItems   int
		wantErr     *iq.StanzaError
		wantAppName xml.Name
	}{
		{
			name: "roster get",
			in: `<iq from='juliet@example.com/balcony'
			         id='b4vs9km4'
			         to='romeo@example.net'
			         type='get'>
			       <query xmlns='jabber:iq:roster'/>
			     </iq>`,
			wantID: "b4vs9km4", wantType: iq.TypeGet,
			wantFrom: "juliet@example.com/balcony", wantTo: "romeo@example.net",
			wantPayload: xml.Name{Space: stanzaNSRoster, Local: "query"},
		},
		{
			name: "roster result",
			in: `<iq from='romeo@example.net'
			         id='b4vs9km4'
			         to='juliet@example.com/balcony'
			         type='result'>
			       <query xmlns='jabber:iq:roster'>
			         <item jid='nurse@example.com'/>
			         <item jid='romeo@example.net'/>
			       </query>
			     </iq>`,
			wantID: "b4vs9km4", wantType: iq.TypeResult,
			wantFrom: "romeo@example.net", wantTo: "juliet@example.com/balcony",
			wantPayload: xml.Name{Space: stanzaNSRoster, Local: "query"}, wantItems: 2,
		},
		{
			name:     "empty result",
			in:       `<iq from='romeo@example.net' id='rg1' to='juliet@example.com/balcony' type='result'/>`,
			wantID:   "rg1",
			wantType: iq.TypeResult, wantFrom: "romeo@example.net", wantTo: "juliet@example.com/balcony",
		},
		{
			name: "error service-unavailable with text",
			in: `<iq from='im.example.com'
			         id='ixc174g9'
			         to='juliet@im.example.com/balcony'
			         type='error'>
			       <error type='cancel' by='im.example.com'>
			         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
			         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>[ ... application-specific information ... ]</text>
			       </error>
			     </iq>`,
			wantID: "ixc174g9", wantType: iq.TypeError,
			wantFrom: "im.example.com", wantTo: "juliet@im.example.com/balcony",
			wantErr: &iq.StanzaError{
				Type: iq.Cancel, Condition: iq.ServiceUnavailable, By: "im.example.com",
				Text: "[ ... application-specific information ... ]", Lang: "en",
			},
		},
		{
			name: "error with application-specific condition",
			in: `<iq from='pubsub.example.com'
			         id='kd8q3qk1'
			         to='juliet@example.com/balcony'
			         type='error'>
			       <error type='wait'>
			         <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
			         <too-many-subscriptions xmlns='http://jabber.org/protocol/pubsub#errors'/>
			       </error>
			     </iq>`,
			wantID: "kd8q3qk1", wantType: iq.TypeError,
			wantFrom: "pubsub.example.com", wantTo: "juliet@example.com/balcony",
			wantErr:     &iq.StanzaError{Type: iq.Wait, Condition: iq.ResourceConstraint},
			wantAppName: xml.Name{Space: stanzaNSPubsub, Local: "too-many-subscriptions"},
		},
		{
			name: "error echoing the request",
			in: `<iq from='romeo@example.net' id='b4vs9km4' to='juliet@example.com/balcony' type='error'>
			       <query xmlns='jabber:iq:roster'/>
			       <error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>
			     </iq>`,
			wantID: "b4vs9km4", wantType: iq.TypeError,
			wantFrom: "romeo@example.net", wantTo: "juliet@example.com/balcony",
			wantPayload: xml.Name{Space: stanzaNSRoster, Local: "query"},
			wantErr:     &iq.StanzaError{Type: iq.Auth, Condition: iq.Forbidden},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := stanzaDecode(t, tt.in)
			require.NoError(t, q.Validate())
			assert.Equal(t, tt.wantID, q.ID)
			assert.Equal(t, tt.wantType, q.Type)
			assert.Equal(t, tt.wantFrom, q.From)
			assert.Equal(t, tt.wantTo, q.To)
			assert.Equal(t, q.Type == iq.TypeGet || q.Type == iq.TypeSet, q.IsRequest())
			assert.Equal(t, !q.IsRequest(), q.IsResponse())
			if tt.wantPayload == (xml.Name{}) {
				assert.Nil(t, q.Payload)
			} else {
				require.NotNil(t, q.Payload)
				assert.Equal(t, tt.wantPayload, q.Payload.Name)
				assert.Equal(t, tt.wantItems, q.Payload.NumChildren())
				for item := range q.Payload.Children() {
					assert.Equal(t, xml.Name{Space: stanzaNSRoster, Local: "item"}, item.Name)
					assert.NotEmpty(t, item.AttrValue("jid"))
				}
			}
			if tt.wantErr == nil {
				assert.Nil(t, q.Error)
				return
			}
			require.NotNil(t, q.Error)
			assert.Equal(t, tt.wantErr.Type, q.Error.Type)
			assert.Equal(t, tt.wantErr.Condition, q.Error.Condition)
			assert.Equal(t, tt.wantErr.Text, q.Error.Text)
			assert.Equal(t, tt.wantErr.Lang, q.Error.Lang)
			assert.Equal(t, tt.wantErr.By, q.Error.By)
			if tt.wantAppName == (xml.Name{}) {
				assert.Nil(t, q.Error.App)
			} else {
				require.NotNil(t, q.Error.App)
				assert.Equal(t, tt.wantAppName, q.Error.App.Name)
			}
			assert.ErrorIs(t, q.Error, &iq.StanzaError{Condition: tt.wantErr.Condition})
		})
	}
}

// stanzaRoundTripCases are IQs, decoded or built, for the encoding tests.
func stanzaRoundTripCases() []struct {
	name string
	iq   *iq.IQ
} {
	dec := func(s string) *iq.IQ {
		var q iq.IQ
		if err := xml.Unmarshal([]byte(s), &q); err != nil {
			panic(err)
		}
		return &q
	}
	return []struct {
		name string
		iq   *iq.IQ
	}{
		{name: "built get", iq: &iq.IQ{ID: "1", To: "a@b/c", From: "d@e/f", Type: iq.TypeGet, Payload: iq.NewElement(stanzaNSRoster, "query")}},
		{name: "built empty result", iq: &iq.IQ{ID: "2", Type: iq.TypeResult}},
		{name: "built result with lang", iq: &iq.IQ{ID: "3", Type: iq.TypeResult, Lang: "fr", Payload: iq.NewElement("jabber:iq:version", "query").Append(iq.NewElement("jabber:iq:version", "name").AppendText("x & y"))}},
		{name: "built error", iq: &iq.IQ{ID: "4", Type: iq.TypeError, Error: &iq.StanzaError{
			Type: iq.Modify, Condition: iq.BadRequest, Text: `bad <"input">`, Lang: "en", By: "svc.example",
			App: iq.NewElement("urn:app", "oops", "code", "7"),
		}}},
		{name: "built error with target", iq: &iq.IQ{ID: "5", Type: iq.TypeError, Error: &iq.StanzaError{
			Type: iq.Cancel, Condition: iq.Gone, Target: "xmpp:romeo@example.net",
		}}},
		{name: "escaped attributes", iq: &iq.IQ{ID: `a"b'c<d>&e` + "\t\n\r", To: "x@y", Type: iq.TypeGet, Payload: iq.NewElement("u:1", "q")}},
		{name: "decoded roster result", iq: dec(`<iq type='result' id='r1' to='a@b' from='c@d'><query xmlns='jabber:iq:roster'><item jid='x@y' name='X'/></query></iq>`)},
		{name: "decoded get with three children", iq: dec(`<iq type='get' id='x'><a xmlns='u:1'/><b xmlns='u:2'>t</b><c xmlns='u:3'/></iq>`)},
		{name: "decoded error with payload and app", iq: dec(`<iq type='error' id='e' xml:lang='en'><query xmlns='jabber:iq:roster'/><error type='wait' by='p.example'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>slow</text><too-many-subscriptions xmlns='http://jabber.org/protocol/pubsub#errors'/><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)},
		{name: "decoded unknown type", iq: dec(`<iq type='nonsense' id='n'/>`)},
	}
}

func TestIQMarshalRoundTrip(t *testing.T) {
	encoders := []struct {
		name string
		enc  func(*iq.IQ) ([]byte, error)
	}{
		{name: "xml.Marshal", enc: func(q *iq.IQ) ([]byte, error) { return xml.Marshal(q) }},
		{name: "AppendXML", enc: func(q *iq.IQ) ([]byte, error) { return q.AppendXML(nil) }},
		{name: "AppendXML with prefix", enc: func(q *iq.IQ) ([]byte, error) {
			b, err := q.AppendXML([]byte("<!--prefix-->"))
			if err != nil {
				return nil, err
			}
			if !strings.HasPrefix(string(b), "<!--prefix-->") {
				return nil, errors.New("AppendXML dropped the prefix")
			}
			return b[len("<!--prefix-->"):], nil
		}},
		{name: "String", enc: func(q *iq.IQ) ([]byte, error) { return []byte(q.String()), nil }},
		{name: "AppendTokens", enc: encodeTokens},
	}
	for _, tc := range stanzaRoundTripCases() {
		for _, e := range encoders {
			t.Run(tc.name+"/"+e.name, func(t *testing.T) {
				out, err := e.enc(tc.iq)
				require.NoError(t, err)
				s := string(out)
				assert.True(t, strings.HasPrefix(s, "<iq ") || strings.HasPrefix(s, "<iq>") || strings.HasPrefix(s, "<iq/>"), "output %s", s)
				// The <iq> itself carries no namespace declaration.
				var start xml.StartElement
				d := xml.NewDecoder(strings.NewReader(s))
				for {
					tok, err := d.RawToken()
					require.NoError(t, err)
					if se, ok := tok.(xml.StartElement); ok {
						start = se
						break
					}
				}
				assert.Equal(t, xml.Name{Local: "iq"}, start.Name)
				for _, a := range start.Attr {
					assert.False(t, a.Name.Space == "xmlns" || a.Name.Local == "xmlns" && a.Name.Space == "",
						"<iq> declares a namespace: %s", s)
				}
				got := stanzaDecode(t, s)
				stanzaRequireEqual(t, tc.iq, got)
				// Re-encoding what was decoded yields the same IQ again.
				stanzaRequireEqual(t, got, stanzaDecode(t, got.String()))
			})
		}
	}
}

func TestIQEncodersAgree(t *testing.T) {
	for _, tc := range stanzaRoundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			m, err := xml.Marshal(tc.iq)
			require.NoError(t, err)
			a, err := tc.iq.AppendXML(nil)
			require.NoError(t, err)
			assert.Equal(t, string(a), tc.iq.String())
			stanzaRequireEqual(t, stanzaDecode(t, string(m)), stanzaDecode(t, string(a)))
		})
	}
}

func TestIQMarshalEmbedded(t *testing.T) {
	// An IQ as a field of a user's struct: the start element passed in is
	// ignored and <iq> takes the enclosing namespace.
	type wrapper struct {
		XMLName xml.Name `xml:"jabber:client wrap"`
		IQ      *iq.IQ   `xml:"whatever"`
	}
	w := wrapper{IQ: &iq.IQ{ID: "1", Type: iq.TypeGet, Payload: iq.NewElement("u:1", "q")}}
	out, err := xml.Marshal(w)
	require.NoError(t, err)
	var back struct {
		XMLName xml.Name `xml:"jabber:client wrap"`
		IQ      iq.IQ    `xml:"jabber:client iq"`
	}
	require.NoError(t, xml.Unmarshal(out, &back), "%s", out)
	stanzaRequireEqual(t, w.IQ, &back.IQ)
}

func TestIQInStream(t *testing.T) {
	const head = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`
	tests := []struct {
		name        string
		stanza      string
		wantType    iq.Type
		wantPayload xml.Name
		wantCond    iq.Condition
		wantApp     xml.Name
	}{
		{
			name:        "roster get",
			stanza:      `<iq type='get' id='rs1'><query xmlns='jabber:iq:roster'/></iq>`,
			wantType:    iq.TypeGet,
			wantPayload: xml.Name{Space: stanzaNSRoster, Local: "query"},
		},
		{
			name:        "payload without xmlns takes the stream's",
			stanza:      `<iq type='result' id='rs1'><thing/></iq>`,
			wantType:    iq.TypeResult,
			wantPayload: xml.Name{Space: iq.NSClient, Local: "thing"},
		},
		{
			name:     "error",
			stanza:   `<iq type='error' id='rs1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
			wantType: iq.TypeError,
			wantCond: iq.ItemNotFound,
		},
		{
			name:        "error with explicit jabber:client and echoed payload",
			stanza:      `<iq type='error' id='rs1'><query xmlns='jabber:iq:roster'/><error xmlns='jabber:client' type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><too-many-subscriptions xmlns='http://jabber.org/protocol/pubsub#errors'/></error></iq>`,
			wantType:    iq.TypeError,
			wantPayload: xml.Name{Space: stanzaNSRoster, Local: "query"},
			wantCond:    iq.ResourceConstraint,
			wantApp:     xml.Name{Space: stanzaNSPubsub, Local: "too-many-subscriptions"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := xml.NewDecoder(strings.NewReader(head + "\n" + tt.stanza + "\n" + tt.stanza))
			var seen int
			for seen < 2 { // the stream stays open, as it would on the wire
				tok, err := d.Token()
				require.NoError(t, err)
				start, ok := tok.(xml.StartElement)
				if !ok || start.Name.Local == "stream" {
					continue
				}
				require.Equal(t, xml.Name{Space: iq.NSClient, Local: "iq"}, start.Name)
				var q iq.IQ
				require.NoError(t, d.DecodeElement(&q, &start))
				seen++
				assert.Equal(t, "rs1", q.ID)
				assert.Equal(t, tt.wantType, q.Type)
				require.NoError(t, q.Validate())
				if tt.wantPayload == (xml.Name{}) {
					assert.Nil(t, q.Payload)
				} else {
					require.NotNil(t, q.Payload)
					assert.Equal(t, tt.wantPayload, q.Payload.Name)
				}
				if tt.wantCond == "" {
					assert.Nil(t, q.Error)
				} else {
					require.NotNil(t, q.Error, "the <error/> child must be recognised")
					assert.Equal(t, tt.wantCond, q.Error.Condition)
					if tt.wantApp != (xml.Name{}) {
						require.NotNil(t, q.Error.App)
						assert.Equal(t, tt.wantApp, q.Error.App.Name)
					}
				}
				// Written back into a jabber:client stream, it reads the same.
				again := head + q.String() + "</stream:stream>"
				d2 := xml.NewDecoder(strings.NewReader(again))
				for {
					tok2, err := d2.Token()
					require.NoError(t, err)
					if s2, ok := tok2.(xml.StartElement); ok && s2.Name.Local == "iq" {
						var q2 iq.IQ
						require.NoError(t, d2.DecodeElement(&q2, &s2))
						stanzaRequireEqual(t, &q, &q2)
						break
					}
				}
			}
			assert.Equal(t, 2, seen)
		})
	}
}

func TestIQReplies(t *testing.T) {
	req := &iq.IQ{ID: "req-1", To: "service.example", From: "juliet@example.com/balcony", Lang: "en", Type: iq.TypeGet,
		Payload: iq.NewElement("jabber:iq:version", "query")}
	payload := iq.NewElement("jabber:iq:version", "query").Append(iq.NewElement("jabber:iq:version", "name").AppendText("svc"))
	serr := iq.NewError(iq.Cancel, iq.ServiceUnavailable, "down")
	tests := []struct {
		name        string
		reply       *iq.IQ
		wantType    iq.Type
		wantPayload *iq.Element
		wantErr     *iq.StanzaError
	}{
		{name: "result with payload", reply: req.Result(payload), wantType: iq.TypeResult, wantPayload: payload},
		{name: "empty result", reply: req.Result(nil), wantType: iq.TypeResult},
		{name: "error reply", reply: req.ErrorReply(serr), wantType: iq.TypeError, wantErr: serr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.reply
			assert.Equal(t, req.ID, r.ID)
			assert.Equal(t, req.From, r.To)
			assert.Equal(t, req.To, r.From)
			assert.Equal(t, tt.wantType, r.Type)
			assert.True(t, tt.wantPayload.Equal(r.Payload))
			assert.Same(t, tt.wantErr, r.Error)
			assert.True(t, r.IsResponse())
			assert.False(t, r.IsRequest())
			require.NoError(t, r.Validate())
			// And on the wire.
			back := stanzaDecode(t, r.String())
			stanzaRequireEqual(t, r, back)
		})
	}
}

func TestIQAppendXMLInvalidPayload(t *testing.T) {
	tests := []struct {
		name string
		iq   *iq.IQ
	}{
		{name: "bad payload name", iq: &iq.IQ{ID: "1", Type: iq.TypeGet, Payload: iq.NewElement("u:1", "a b")}},
		{name: "bad grandchild name", iq: &iq.IQ{ID: "1", Type: iq.TypeGet, Payload: iq.NewElement("u:1", "q").Append(iq.NewElement("u:1", "x><evil/"))}},
		{name: "comment breaking payload name", iq: &iq.IQ{ID: "1", Type: iq.TypeGet, Payload: iq.NewElement("u:1", "--><evil/><!--")}},
		{name: "bad app element", iq: &iq.IQ{ID: "1", Type: iq.TypeError, Error: &iq.StanzaError{Type: iq.Cancel, Condition: iq.Conflict, App: iq.NewElement("u:1", "")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.iq.AppendXML(nil)
			require.Error(t, err)
			s := tt.iq.String()
			assert.True(t, strings.HasPrefix(s, "<!--"), "String() = %s", s)
			stanzaRequireNoElements(t, s)
		})
	}
}

func TestIQStringAttributeEscaping(t *testing.T) {
	q := &iq.IQ{ID: `"/><evil/>`, To: `a'b`, From: "x&y", Lang: `"en`, Type: iq.TypeGet, Payload: iq.NewElement("u:1", "q")}
	s := q.String()
	assert.NotContains(t, s, "<evil")
	back := stanzaDecode(t, s)
	stanzaRequireEqual(t, q, back)
}

// stanzaRequireNoElements checks that s, read as XML content, holds no
// element at all: what String() returns when encoding fails must not be
// markup that a reader would take for elements.
func stanzaRequireNoElements(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader("<root>" + s + "</root>"))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return
		}
		require.NoError(t, err, "String() output is not well-formed: %s", s)
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local != "root" {
			t.Fatalf("String() output %q holds an element <%s>", s, se.Name.Local)
		}
	}
}
