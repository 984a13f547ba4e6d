package iq_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

// errWire is a generic reading of an <error/> element, independent of the
// package's own decoder.
type errWire struct {
	XMLName xml.Name
	Type    string       `xml:"type,attr"`
	By      string       `xml:"by,attr"`
	Attrs   []xml.Attr   `xml:",any,attr"`
	Kids    []errWireKid `xml:",any"`
}

type errWireKid struct {
	XMLName xml.Name
	Lang    string     `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
}

// errEncoders serialise a StanzaError: by itself with xml.Marshal, and as
// the <error/> of an IQ written with xml.Marshal and with String(); each
// returns the <error/> element's XML.
var errEncoders = []struct {
	name string
	enc  func(t *testing.T, e *iq.StanzaError) string
}{
	{name: "xml.Marshal", enc: func(t *testing.T, e *iq.StanzaError) string {
		b, err := xml.Marshal(e)
		require.NoError(t, err)
		return string(b)
	}},
	{name: "IQ xml.Marshal", enc: func(t *testing.T, e *iq.StanzaError) string {
		b, err := xml.Marshal(&iq.IQ{ID: "1", Type: iq.TypeError, Error: e})
		require.NoError(t, err)
		return errExtract(t, string(b))
	}},
	{name: "IQ String", enc: func(t *testing.T, e *iq.StanzaError) string {
		return errExtract(t, (&iq.IQ{ID: "1", Type: iq.TypeError, Error: e}).String())
	}},
}

// errExtract returns the <error/> child of the <iq> in s.
func errExtract(t *testing.T, s string) string {
	t.Helper()
	var el iq.Element
	require.NoError(t, xml.Unmarshal([]byte(s), &el), "%s", s)
	errEl := el.Child("", "error")
	require.NotNil(t, errEl, "no <error/> in %s", s)
	return errEl.String()
}

func TestStanzaErrorMarshal(t *testing.T) {
	tests := []struct {
		name     string
		err      *iq.StanzaError
		wantType string
		wantBy   string
		wantKids []errWireKid // XMLName, Lang and Text compared
	}{
		{
			name:     "condition only",
			err:      &iq.StanzaError{Type: iq.Cancel, Condition: iq.ServiceUnavailable},
			wantType: "cancel",
			wantKids: []errWireKid{{XMLName: xml.Name{Space: iq.NSStanzas, Local: "service-unavailable"}}},
		},
		{
			name:     "with text and lang",
			err:      &iq.StanzaError{Type: iq.Modify, Condition: iq.BadRequest, Text: "no <good> & \"bad\"", Lang: "en"},
			wantType: "modify",
			wantKids: []errWireKid{
				{XMLName: xml.Name{Space: iq.NSStanzas, Local: "bad-request"}},
				{XMLName: xml.Name{Space: iq.NSStanzas, Local: "text"}, Lang: "en", Text: "no <good> & \"bad\""},
			},
		},
		{
			name:     "text without lang",
			err:      iq.NewError(iq.Wait, iq.ResourceConstraint, "busy"),
			wantType: "wait",
			wantKids: []errWireKid{
				{XMLName: xml.Name{Space: iq.NSStanzas, Local: "resource-constraint"}},
				{XMLName: xml.Name{Space: iq.NSStanzas, Local: "text"}, Text: "busy"},
			},
		},
		{
			name:     "by attribute",
			err:      &iq.StanzaError{Type: iq.Auth, Condition: iq.Forbidden, By: "example.com"},
			wantType: "auth", wantBy: "example.com",
			wantKids: []errWireKid{{XMLName: xml.Name{Space: iq.NSStanzas, Local: "forbidden"}}},
		},
		{
			name: "application-specific element kept, after text",
			err: &iq.StanzaError{Type: iq.Wait, Condition: iq.ResourceConstraint, Text: "t",
				App: iq.NewElement(stanzaNSPubsub, "too-many-subscriptions")},
			wantType: "wait",
			wantKids: []errWireKid{
				{XMLName: xml.Name{Space: iq.NSStanzas, Local: "resource-constraint"}},
				{XMLName: xml.Name{Space: iq.NSStanzas, Local: "text"}, Text: "t"},
				{XMLName: xml.Name{Space: stanzaNSPubsub, Local: "too-many-subscriptions"}},
			},
		},
		{
			name:     "gone with target",
			err:      &iq.StanzaError{Type: iq.Cancel, Condition: iq.Gone, Target: "xmpp:romeo@afterlife.example.net"},
			wantType: "cancel",
			wantKids: []errWireKid{{XMLName: xml.Name{Space: iq.NSStanzas, Local: "gone"}, Text: "xmpp:romeo@afterlife.example.net"}},
		},
		{
			name:     "redirect with target",
			err:      &iq.StanzaError{Type: iq.Modify, Condition: iq.Redirect, Target: "xmpp:rooms@conference.example.com?join"},
			wantType: "modify",
			wantKids: []errWireKid{{XMLName: xml.Name{Space: iq.NSStanzas, Local: "redirect"}, Text: "xmpp:rooms@conference.example.com?join"}},
		},
		{
			name:     "missing type written as cancel",
			err:      &iq.StanzaError{Condition: iq.ItemNotFound},
			wantType: "cancel",
			wantKids: []errWireKid{{XMLName: xml.Name{Space: iq.NSStanzas, Local: "item-not-found"}}},
		},
		{
			name:     "unknown condition written as undefined-condition",
			err:      &iq.StanzaError{Type: iq.Cancel, Condition: "made-up"},
			wantType: "cancel",
			wantKids: []errWireKid{{XMLName: xml.Name{Space: iq.NSStanzas, Local: "undefined-condition"}}},
		},
		{
			name:     "malicious condition written as undefined-condition",
			err:      &iq.StanzaError{Type: iq.Cancel, Condition: "x/><evil/><y"},
			wantType: "cancel",
			wantKids: []errWireKid{{XMLName: xml.Name{Space: iq.NSStanzas, Local: "undefined-condition"}}},
		},
		{
			name:     "zero value",
			err:      &iq.StanzaError{},
			wantType: "cancel",
			wantKids: []errWireKid{{XMLName: xml.Name{Space: iq.NSStanzas, Local: "undefined-condition"}}},
		},
	}
	for _, tt := range tests {
		for _, enc := range errEncoders {
			t.Run(tt.name+"/"+enc.name, func(t *testing.T) {
				out := enc.enc(t, tt.err)
				var w errWire
				require.NoError(t, xml.Unmarshal([]byte(out), &w), "%s", out)
				assert.Equal(t, "error", w.XMLName.Local)
				if enc.name != "xml.Marshal" {
					// Inside an <iq> with no xmlns, <error/> has none either.
					assert.Equal(t, "", w.XMLName.Space)
				}
				assert.Equal(t, tt.wantType, w.Type)
				assert.Equal(t, tt.wantBy, w.By)
				assert.Empty(t, w.Attrs, "unexpected attributes in %s", out)
				require.Len(t, w.Kids, len(tt.wantKids), "%s", out)
				for i, want := range tt.wantKids {
					got := w.Kids[i]
					assert.Equal(t, want.XMLName, got.XMLName, "child %d in %s", i, out)
					assert.Equal(t, want.Lang, got.Lang, "child %d lang", i)
					assert.Equal(t, want.Text, got.Text, "child %d text", i)
				}
				assert.NotContains(t, out, "<evil")

				// And the package reads back what it wrote.
				var back iq.StanzaError
				require.NoError(t, xml.Unmarshal([]byte(out), &back))
				assert.Equal(t, iq.ErrorType(tt.wantType), back.Type)
				assert.Equal(t, iq.Condition(tt.wantKids[0].XMLName.Local), back.Condition)
				assert.Equal(t, tt.err.Text, back.Text)
				assert.Equal(t, tt.err.Lang, back.Lang)
				assert.Equal(t, tt.err.By, back.By)
				assert.Equal(t, tt.err.Target, back.Target)
				assert.True(t, tt.err.App.Equal(back.App), "App: %v", back.App)
			})
		}
	}
}

func TestStanzaErrorUnmarshal(t *testing.T) {
	const ns = "urn:ietf:params:xml:ns:xmpp-stanzas"
	tests := []struct {
		name    string
		in      string
		want    iq.StanzaError // App compared by name only
		wantApp xml.Name
	}{
		{
			name: "RFC order",
			in:   `<error type='cancel'><service-unavailable xmlns='` + ns + `'/><text xmlns='` + ns + `' xml:lang='en'>down</text></error>`,
			want: iq.StanzaError{Type: iq.Cancel, Condition: iq.ServiceUnavailable, Text: "down", Lang: "en"},
		},
		{
			name: "text before condition",
			in:   `<error type='modify'><text xmlns='` + ns + `'>why</text><bad-request xmlns='` + ns + `'/></error>`,
			want: iq.StanzaError{Type: iq.Modify, Condition: iq.BadRequest, Text: "why"},
		},
		{
			name:    "app element before condition",
			in:      `<error type='wait'><too-many-subscriptions xmlns='http://jabber.org/protocol/pubsub#errors'/><resource-constraint xmlns='` + ns + `'/></error>`,
			want:    iq.StanzaError{Type: iq.Wait, Condition: iq.ResourceConstraint},
			wantApp: xml.Name{Space: stanzaNSPubsub, Local: "too-many-subscriptions"},
		},
		{
			name:    "app, text, condition",
			in:      `<error type='cancel' by='pubsub.example.com'><unsupported xmlns='http://jabber.org/protocol/pubsub#errors' feature='x'/><text xmlns='` + ns + `' xml:lang='fr'>non</text><feature-not-implemented xmlns='` + ns + `'/></error>`,
			want:    iq.StanzaError{Type: iq.Cancel, Condition: iq.FeatureNotImplemented, Text: "non", Lang: "fr", By: "pubsub.example.com"},
			wantApp: xml.Name{Space: "http://jabber.org/protocol/pubsub#errors", Local: "unsupported"},
		},
		{
			name: "unknown condition in stanzas namespace",
			in:   `<error type='cancel'><no-such-condition xmlns='` + ns + `'/></error>`,
			want: iq.StanzaError{Type: iq.Cancel, Condition: iq.UndefinedCondition},
		},
		{
			name:    "no condition",
			in:      `<error type='cancel'><text xmlns='` + ns + `'>only text</text><x xmlns='urn:app'/></error>`,
			want:    iq.StanzaError{Type: iq.Cancel, Condition: iq.UndefinedCondition, Text: "only text"},
			wantApp: xml.Name{Space: "urn:app", Local: "x"},
		},
		{
			name: "empty error",
			in:   `<error/>`,
			want: iq.StanzaError{Type: iq.Cancel, Condition: iq.UndefinedCondition},
		},
		{
			name: "condition in wrong namespace is not a condition",
			in:   `<error type='cancel'><item-not-found/></error>`,
			want: iq.StanzaError{Type: iq.Cancel, Condition: iq.UndefinedCondition},
			// <item-not-found/> without the namespace is an application element.
			wantApp: xml.Name{Local: "item-not-found"},
		},
		{
			name: "gone with target",
			in:   `<error type='cancel'><gone xmlns='` + ns + `'>xmpp:romeo@afterlife.example.net</gone></error>`,
			want: iq.StanzaError{Type: iq.Cancel, Condition: iq.Gone, Target: "xmpp:romeo@afterlife.example.net"},
		},
		{
			name: "redirect with target",
			in:   `<error type='modify'><redirect xmlns='` + ns + `'>xmpp:rooms@conference.example.com</redirect></error>`,
			want: iq.StanzaError{Type: iq.Modify, Condition: iq.Redirect, Target: "xmpp:rooms@conference.example.com"},
		},
		{
			name: "first condition and first text win",
			in:   `<error type='cancel'><conflict xmlns='` + ns + `'/><text xmlns='` + ns + `' xml:lang='en'>one</text><not-allowed xmlns='` + ns + `'/><text xmlns='` + ns + `' xml:lang='de'>zwei</text></error>`,
			want: iq.StanzaError{Type: iq.Cancel, Condition: iq.Conflict, Text: "one", Lang: "en"},
		},
		{
			name:    "first app element wins",
			in:      `<error type='cancel'><a xmlns='urn:1'/><b xmlns='urn:2'/><conflict xmlns='` + ns + `'/></error>`,
			want:    iq.StanzaError{Type: iq.Cancel, Condition: iq.Conflict},
			wantApp: xml.Name{Space: "urn:1", Local: "a"},
		},
		{
			name: "whitespace and prefixes",
			in:   "<error type='auth' xmlns:s='" + ns + "'>\n  <s:not-authorized/>\n  <s:text>\n</s:text>\n</error>",
			want: iq.StanzaError{Type: iq.Auth, Condition: iq.NotAuthorized, Text: "\n"},
		},
		{
			name: "unknown type read as cancel",
			in:   `<error type='fatal'><conflict xmlns='` + ns + `'/></error>`,
			want: iq.StanzaError{Type: iq.Cancel, Condition: iq.Conflict},
		},
	}
	for _, tt := range tests {
		check := func(t *testing.T, got *iq.StanzaError, defaultNS string) {
			t.Helper()
			require.NotNil(t, got)
			app := got.App
			cp := *got
			cp.App = nil
			assert.Equal(t, tt.want, cp)
			if tt.wantApp == (xml.Name{}) {
				assert.Nil(t, app)
			} else {
				require.NotNil(t, app)
				wantApp := tt.wantApp
				if wantApp.Space == "" {
					wantApp.Space = defaultNS // an unqualified element inherits
				}
				assert.Equal(t, wantApp, app.Name)
			}
		}
		t.Run(tt.name+"/direct", func(t *testing.T) {
			var got iq.StanzaError
			require.NoError(t, xml.Unmarshal([]byte(tt.in), &got))
			check(t, &got, "")
		})
		t.Run(tt.name+"/in IQ", func(t *testing.T) {
			q := stanzaDecode(t, `<iq type='error' id='1'>`+tt.in+`</iq>`)
			check(t, q.Error, "")
			assert.Equal(t, 0, q.NumChildren())
		})
		t.Run(tt.name+"/in jabber:client stream", func(t *testing.T) {
			q := stanzaDecode(t, `<iq xmlns='jabber:client' type='error' id='1'>`+tt.in+`</iq>`)
			check(t, q.Error, iq.NSClient)
		})
	}
}

func TestStanzaErrorUnmarshalNotWellFormed(t *testing.T) {
	var e iq.StanzaError
	assert.Error(t, xml.Unmarshal([]byte(`<error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'></error>`), &e))
}

func TestStanzaErrorString(t *testing.T) {
	tests := []struct {
		name    string
		err     *iq.StanzaError
		want    []string
		notWant []string
	}{
		{
			name: "type condition text",
			err:  iq.NewError(iq.Cancel, iq.ServiceUnavailable, "it is down"),
			want: []string{"cancel", "service-unavailable", "it is down"},
		},
		{
			name: "no text",
			err:  iq.NewError(iq.Auth, iq.NotAuthorized, ""),
			want: []string{"auth", "not-authorized"},
		},
		{
			name: "app element named",
			err:  &iq.StanzaError{Type: iq.Wait, Condition: iq.ResourceConstraint, App: iq.NewElement(stanzaNSPubsub, "too-many-subscriptions")},
			want: []string{"wait", "resource-constraint", "too-many-subscriptions", stanzaNSPubsub},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.err.Error()
			for _, w := range tt.want {
				assert.Contains(t, s, w)
			}
			wrapped := fmt.Errorf("request: %w", tt.err)
			assert.Contains(t, wrapped.Error(), s)
		})
	}
}

func TestStanzaErrorIs(t *testing.T) {
	notFound := iq.NewError(iq.Cancel, iq.ItemNotFound, "no such item")
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{name: "same condition", err: notFound, target: &iq.StanzaError{Condition: iq.ItemNotFound}, want: true},
		{name: "same condition and type", err: notFound, target: &iq.StanzaError{Type: iq.Cancel, Condition: iq.ItemNotFound}, want: true},
		{name: "text ignored", err: notFound, target: iq.NewError(iq.Cancel, iq.ItemNotFound, "other text"), want: true},
		{name: "other type", err: notFound, target: &iq.StanzaError{Type: iq.Wait, Condition: iq.ItemNotFound}, want: false},
		{name: "other condition", err: notFound, target: &iq.StanzaError{Condition: iq.Conflict}, want: false},
		{name: "empty target condition", err: notFound, target: &iq.StanzaError{Type: iq.Cancel}, want: false},
		{name: "wrapped once", err: fmt.Errorf("get roster: %w", notFound), target: &iq.StanzaError{Condition: iq.ItemNotFound}, want: true},
		{name: "wrapped twice with type", err: fmt.Errorf("a: %w", fmt.Errorf("b: %w", notFound)), target: &iq.StanzaError{Type: iq.Cancel, Condition: iq.ItemNotFound}, want: true},
		{name: "wrapped other condition", err: fmt.Errorf("a: %w", notFound), target: &iq.StanzaError{Condition: iq.Forbidden}, want: false},
		{name: "joined", err: errors.Join(errors.New("x"), notFound), target: &iq.StanzaError{Condition: iq.ItemNotFound}, want: true},
		{name: "not a stanza error target", err: notFound, target: iq.ErrInvalid, want: false},
		{name: "nil stanza error target", err: notFound, target: (*iq.StanzaError)(nil), want: false},
		{name: "plain error", err: errors.New("item-not-found"), target: &iq.StanzaError{Condition: iq.ItemNotFound}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, errors.Is(tt.err, tt.target))
		})
	}
	t.Run("As", func(t *testing.T) {
		var se *iq.StanzaError
		require.ErrorAs(t, fmt.Errorf("x: %w", notFound), &se)
		assert.Same(t, notFound, se)
	})
}

func TestConditionWireNames(t *testing.T) {
	tests := []struct {
		cond iq.Condition
		wire string
	}{
		{iq.BadRequest, "bad-request"},
		{iq.Conflict, "conflict"},
		{iq.FeatureNotImplemented, "feature-not-implemented"},
		{iq.Forbidden, "forbidden"},
		{iq.Gone, "gone"},
		{iq.InternalServerError, "internal-server-error"},
		{iq.ItemNotFound, "item-not-found"},
		{iq.JIDMalformed, "jid-malformed"},
		{iq.NotAcceptable, "not-acceptable"},
		{iq.NotAllowed, "not-allowed"},
		{iq.NotAuthorized, "not-authorized"},
		{iq.PolicyViolation, "policy-violation"},
		{iq.RecipientUnavailable, "recipient-unavailable"},
		{iq.Redirect, "redirect"},
		{iq.RegistrationRequired, "registration-required"},
		{iq.RemoteServerNotFound, "remote-server-not-found"},
		{iq.RemoteServerTimeout, "remote-server-timeout"},
		{iq.ResourceConstraint, "resource-constraint"},
		{iq.ServiceUnavailable, "service-unavailable"},
		{iq.SubscriptionRequired, "subscription-required"},
		{iq.UndefinedCondition, "undefined-condition"},
		{iq.UnexpectedRequest, "unexpected-request"},
	}
	require.Len(t, tests, 22)
	seen := map[iq.Condition]bool{}
	for _, tt := range tests {
		t.Run(tt.wire, func(t *testing.T) {
			assert.Equal(t, tt.wire, string(tt.cond))
			assert.True(t, tt.cond.Valid())
			assert.False(t, seen[tt.cond], "duplicate")
			seen[tt.cond] = true
			// Written on the wire under that name, and read back.
			out := (&iq.IQ{ID: "1", Type: iq.TypeError, Error: iq.NewError(iq.Cancel, tt.cond, "")}).String()
			assert.Contains(t, out, "<"+tt.wire+` xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"`)
			back := stanzaDecode(t, out)
			require.NotNil(t, back.Error)
			assert.Equal(t, tt.cond, back.Error.Condition)
		})
	}
}

func TestConditionValidFalse(t *testing.T) {
	for _, c := range []iq.Condition{"", "text", "Bad-Request", "bad_request", "bad-request ", "made-up", "service-unavailable\x00"} {
		t.Run(fmt.Sprintf("%q", string(c)), func(t *testing.T) {
			assert.False(t, c.Valid())
		})
	}
}

func TestErrorTypeValid(t *testing.T) {
	tests := []struct {
		typ  iq.ErrorType
		want bool
	}{
		{iq.Auth, true}, {iq.Cancel, true}, {iq.Continue, true}, {iq.Modify, true}, {iq.Wait, true},
		{"", false}, {"CANCEL", false}, {"error", false}, {"cancel ", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", string(tt.typ)), func(t *testing.T) {
			assert.Equal(t, tt.want, tt.typ.Valid())
		})
	}
	assert.Equal(t, []string{"auth", "cancel", "continue", "modify", "wait"},
		[]string{string(iq.Auth), string(iq.Cancel), string(iq.Continue), string(iq.Modify), string(iq.Wait)})
}

func TestNewError(t *testing.T) {
	e := iq.NewError(iq.Modify, iq.JIDMalformed, "bad jid")
	assert.Equal(t, iq.StanzaError{Type: iq.Modify, Condition: iq.JIDMalformed, Text: "bad jid"}, *e)
}

func TestErrTimeout(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{name: "deadline exceeded", err: iq.ErrTimeout, target: context.DeadlineExceeded, want: true},
		{name: "wrapped deadline exceeded", err: fmt.Errorf("x: %w", iq.ErrTimeout), target: context.DeadlineExceeded, want: true},
		{name: "wrapped itself", err: fmt.Errorf("x: %w", iq.ErrTimeout), target: iq.ErrTimeout, want: true},
		{name: "not canceled", err: iq.ErrTimeout, target: context.Canceled, want: false},
		{name: "not closed", err: iq.ErrTimeout, target: iq.ErrClosed, want: false},
		{name: "deadline is not a timeout", err: context.DeadlineExceeded, target: iq.ErrTimeout, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, errors.Is(tt.err, tt.target))
		})
	}
	t.Run("net.Error-like", func(t *testing.T) {
		var to interface{ Timeout() bool }
		require.ErrorAs(t, fmt.Errorf("x: %w", iq.ErrTimeout), &to)
		assert.True(t, to.Timeout())
		assert.True(t, strings.Contains(iq.ErrTimeout.Error(), "timed out"))
	})
}

func TestSentinelErrorsDistinct(t *testing.T) {
	sentinels := map[string]error{
		"ErrClosed": iq.ErrClosed, "ErrTimeout": iq.ErrTimeout, "ErrInvalid": iq.ErrInvalid,
		"ErrDuplicateID": iq.ErrDuplicateID, "ErrTooManyPending": iq.ErrTooManyPending,
	}
	for an, a := range sentinels {
		for bn, b := range sentinels {
			t.Run(an+"/"+bn, func(t *testing.T) {
				assert.Equal(t, an == bn, errors.Is(a, b))
			})
		}
	}
}
