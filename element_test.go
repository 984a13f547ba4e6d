package iq_test

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

const elemXMLNS = "http://www.w3.org/XML/1998/namespace"

// elemDecode unmarshals s into a fresh Element.
func elemDecode(t *testing.T, s string) *iq.Element {
	t.Helper()
	var e iq.Element
	require.NoError(t, xml.Unmarshal([]byte(s), &e), "decoding %q", s)
	return &e
}

// elemEncoders are the two ways an Element is serialised.
var elemEncoders = []struct {
	name string
	enc  func(*iq.Element) (string, error)
}{
	{name: "xml.Marshal", enc: func(e *iq.Element) (string, error) {
		b, err := xml.Marshal(e)
		return string(b), err
	}},
	{name: "String", enc: func(e *iq.Element) (string, error) { return e.String(), nil }},
	{name: "IQ.AppendXML", enc: func(e *iq.Element) (string, error) {
		// The element as the payload of an IQ, taken back out.
		b, err := (&iq.IQ{ID: "x", Type: iq.TypeResult, Payload: e}).AppendXML(nil)
		if err != nil {
			return "", err
		}
		var q iq.IQ
		if err := xml.Unmarshal(b, &q); err != nil {
			return "", err
		}
		if q.Payload == nil {
			return "", nil
		}
		return q.Payload.String(), nil
	}},
}

// elemRequireNoElements checks that s, read as XML content, holds no
// element other than those named in allowed.
func elemRequireNoElements(t *testing.T, s string, allowed ...string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader("<elem-root>" + s + "</elem-root>"))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return
		}
		require.NoError(t, err, "output is not well-formed: %s", s)
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local == "elem-root" {
			continue
		}
		ok = false
		for _, a := range allowed {
			ok = ok || a == se.Name.Local
		}
		require.True(t, ok, "output %q holds an unexpected element <%s>", s, se.Name.Local)
	}
}

func TestElementRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, e *iq.Element)
	}{
		{
			name: "default and prefixed namespaces",
			in:   `<a xmlns='u:1' xmlns:p='u:2'><p:b p:attr='v'/></a>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, xml.Name{Space: "u:1", Local: "a"}, e.Name)
				assert.Empty(t, e.Attr, "namespace declarations are not attributes")
				b := e.Child("u:2", "b")
				require.NotNil(t, b)
				require.Len(t, b.Attr, 1)
				assert.Equal(t, xml.Attr{Name: xml.Name{Space: "u:2", Local: "attr"}, Value: "v"}, b.Attr[0])
				assert.Equal(t, "", b.AttrValue("attr"), "AttrValue reads unqualified attributes only")
			},
		},
		{
			name: "several attribute namespaces",
			in:   `<a xmlns='u:1' xmlns:p='u:2' xmlns:q='u:3' p:x='1' q:y='2' z='3' p:w='4'/>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, []xml.Attr{
					{Name: xml.Name{Space: "u:2", Local: "x"}, Value: "1"},
					{Name: xml.Name{Space: "u:3", Local: "y"}, Value: "2"},
					{Name: xml.Name{Local: "z"}, Value: "3"},
					{Name: xml.Name{Space: "u:2", Local: "w"}, Value: "4"},
				}, e.Attr)
			},
		},
		{
			name: "nested children",
			in:   `<a xmlns='u:1'><b><c><d xmlns='u:2'><e/></d></c></b><f/></a>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, 2, e.NumChildren())
				e4 := e.Child("u:1", "b").Child("u:1", "c").Child("u:2", "d").Child("u:2", "e")
				require.NotNil(t, e4)
				assert.NotNil(t, e.Child("u:1", "f"))
			},
		},
		{
			name: "mixed text",
			in:   `<a xmlns='u:1'>x<b/>y<c>z</c>w</a>`,
			check: func(t *testing.T, e *iq.Element) {
				require.Len(t, e.Content, 5)
				assert.Equal(t, "x", e.Content[0].Text)
				assert.Equal(t, "b", e.Content[1].Element.Name.Local)
				assert.Equal(t, "y", e.Content[2].Text)
				assert.Equal(t, "z", e.Content[3].Element.Text())
				assert.Equal(t, "w", e.Content[4].Text)
				assert.Equal(t, "xyw", e.Text())
			},
		},
		{
			name: "escapes in text and attributes",
			in:   `<a xmlns='u:1' v='&amp;&lt;&gt;&quot;&apos;&#xD;&#x9;&#xA;end'>&amp;&lt;&gt;&quot;&apos;&#xD;&#x9;&#xA;end</a>`,
			check: func(t *testing.T, e *iq.Element) {
				const want = "&<>\"'\r\t\nend"
				assert.Equal(t, want, e.AttrValue("v"))
				assert.Equal(t, want, e.Text())
			},
		},
		{
			name: "no namespace under a namespaced parent",
			in:   `<a xmlns='u:1'><b xmlns=''/></a>`,
			check: func(t *testing.T, e *iq.Element) {
				require.Equal(t, 1, e.NumChildren())
				for c := range e.Children() {
					assert.Equal(t, xml.Name{Local: "b"}, c.Name)
				}
				assert.NotNil(t, e.Child("", "b"))
				assert.Nil(t, e.Child("u:1", "b"))
			},
		},
		{
			name: "no namespace with grandchild",
			in:   `<a xmlns='u:1'><b xmlns=''><c/></b><d/></a>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.NotNil(t, e.Child("", "b").Child("", "c"))
				assert.NotNil(t, e.Child("u:1", "d"))
			},
		},
		{
			name: "xml:lang",
			in:   `<a xmlns='u:1' xml:lang='en'><b xml:lang='fr'>bonjour</b></a>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, []xml.Attr{{Name: xml.Name{Space: elemXMLNS, Local: "lang"}, Value: "en"}}, e.Attr)
				assert.Equal(t, []xml.Attr{{Name: xml.Name{Space: elemXMLNS, Local: "lang"}, Value: "fr"}}, e.Child("u:1", "b").Attr)
			},
		},
		{
			name: "CDATA decodes as text",
			in:   `<a xmlns='u:1'>x<![CDATA[<b>&amp;]]>y</a>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, "x<b>&amp;y", e.Text())
				assert.Equal(t, 0, e.NumChildren())
				assert.True(t, e.Equal(iq.NewElement("u:1", "a").AppendText("x<b>&amp;y")))
			},
		},
		{
			name: "comments and processing instructions dropped",
			in:   `<a xmlns='u:1'>x<!-- comment --><?pi data?>y<!--c--><b/></a>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, "xy", e.Text())
				require.Len(t, e.Content, 2)
				assert.True(t, e.Equal(iq.NewElement("u:1", "a").AppendText("xy").Append(iq.NewElement("u:1", "b"))))
			},
		},
		{
			name: "whitespace kept",
			in:   "<a xmlns='u:1'>\n  <b/>\n</a>",
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, "\n  \n", e.Text())
			},
		},
		{
			name: "no namespace at all",
			in:   `<a x='1'><b>t</b></a>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, xml.Name{Local: "a"}, e.Name)
				assert.Equal(t, "t", e.Child("", "b").Text())
			},
		},
		{
			name: "non-ASCII names and text",
			in:   `<données xmlns='urn:é'><ñ attr='ü'>日本語</ñ></données>`,
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, "日本語", e.Child("urn:é", "ñ").Text())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := elemDecode(t, tt.in)
			tt.check(t, orig)
			for _, enc := range elemEncoders {
				t.Run(enc.name, func(t *testing.T) {
					out, err := enc.enc(orig)
					require.NoError(t, err)
					back := elemDecode(t, out)
					assert.True(t, orig.Equal(back), "round trip changed the element:\n in:  %s\n out: %s", tt.in, out)
					tt.check(t, back)
					// A second trip is stable too.
					out2, err := enc.enc(back)
					require.NoError(t, err)
					assert.True(t, orig.Equal(elemDecode(t, out2)), "second round trip: %s", out2)
				})
			}
		})
	}
}

func TestElementEscaping(t *testing.T) {
	tests := []struct {
		name  string
		value string
	}{
		{name: "markup", value: `&<>"'`},
		{name: "closing tag injection", value: `</a><evil/>`},
		{name: "attribute injection", value: `" evil="1`},
		{name: "apostrophe attribute injection", value: `' evil='1`},
		{name: "carriage return", value: "a\rb\r\nc"},
		{name: "tab and newline", value: "a\tb\nc\n\t"},
		{name: "CDATA end", value: "]]>"},
		{name: "entity lookalike", value: "&amp; &#60; &lt;"},
		{name: "all together", value: "&<>\"'\r\t\n</a><evil/>"},
		{name: "non-ASCII", value: "é日本語😀"},
	}
	for _, tt := range tests {
		for _, enc := range elemEncoders {
			t.Run(tt.name+"/"+enc.name, func(t *testing.T) {
				e := iq.NewElement("u:1", "a", "v", tt.value).
					Append(iq.NewElement("u:1", "b").AppendText(tt.value))
				e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Space: "u:2", Local: "q"}, Value: tt.value})
				e.AppendText(tt.value)
				out, err := enc.enc(e)
				require.NoError(t, err)
				elemRequireNoElements(t, out, "a", "b")
				back := elemDecode(t, out)
				assert.Equal(t, tt.value, back.AttrValue("v"), "attribute after %s", out)
				assert.Equal(t, tt.value, back.Attr[1].Value, "namespaced attribute after %s", out)
				assert.Equal(t, tt.value, back.Child("u:1", "b").Text(), "child text after %s", out)
				assert.Equal(t, tt.value, back.Text(), "text after %s", out)
				assert.True(t, e.Equal(back), "out: %s", out)
			})
		}
	}
}

func TestElementInvalidCharacters(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "NUL", in: "a\x00b", want: "a\uFFFDb"},
		{name: "vertical tab", in: "a\x0bb", want: "a\uFFFDb"},
		{name: "form feed and escape", in: "\x0c\x1b", want: "\uFFFD\uFFFD"},
		{name: "U+FFFE", in: "a\uFFFEb", want: "a\uFFFDb"},
		{name: "U+FFFF", in: "a\uFFFFb", want: "a\uFFFDb"},
		{name: "invalid UTF-8 byte", in: "a\xffb", want: "a\uFFFDb"},
		{name: "truncated UTF-8 sequence", in: "a\xe6\x97b", want: "a\uFFFD\uFFFDb"},
		{name: "valid U+FFFD kept", in: "a\uFFFDb", want: "a\uFFFDb"},
		{name: "allowed controls kept", in: "\t\n\r", want: "\t\n\r"},
	}
	for _, tt := range tests {
		for _, enc := range elemEncoders {
			t.Run(tt.name+"/"+enc.name, func(t *testing.T) {
				e := iq.NewElement("u:1", "a", "v", tt.in).AppendText(tt.in)
				out, err := enc.enc(e)
				require.NoError(t, err)
				back := elemDecode(t, out) // well-formed
				assert.Equal(t, tt.want, back.Text())
				assert.Equal(t, tt.want, back.AttrValue("v"))
			})
		}
		t.Run(tt.name+"/IQ attributes", func(t *testing.T) {
			q := &iq.IQ{ID: tt.in, Type: iq.TypeResult, Error: nil}
			var back iq.IQ
			require.NoError(t, xml.Unmarshal([]byte(q.String()), &back))
			assert.Equal(t, tt.want, back.ID)
			m, err := xml.Marshal(q)
			require.NoError(t, err)
			require.NoError(t, xml.Unmarshal(m, &back))
			assert.Equal(t, tt.want, back.ID)
		})
		t.Run(tt.name+"/stanza error text", func(t *testing.T) {
			q := &iq.IQ{ID: "1", Type: iq.TypeError, Error: iq.NewError(iq.Cancel, iq.Gone, tt.in)}
			q.Error.Target = tt.in
			for _, s := range []string{q.String(), func() string { b, _ := xml.Marshal(q); return string(b) }()} {
				var back iq.IQ
				require.NoError(t, xml.Unmarshal([]byte(s), &back), "%q", s)
				require.NotNil(t, back.Error)
				assert.Equal(t, tt.want, back.Error.Text)
				assert.Equal(t, tt.want, back.Error.Target)
			}
		})
	}
}

func TestElementInvalidNames(t *testing.T) {
	tests := []struct {
		name string
		el   func() *iq.Element
	}{
		{name: "element with space", el: func() *iq.Element { return iq.NewElement("u:1", "a b") }},
		{name: "element with <", el: func() *iq.Element { return iq.NewElement("u:1", "a<b") }},
		{name: "empty element name", el: func() *iq.Element { return iq.NewElement("u:1", "") }},
		{name: "element starting with digit", el: func() *iq.Element { return iq.NewElement("u:1", "1abc") }},
		{name: "element starting with hyphen", el: func() *iq.Element { return iq.NewElement("u:1", "-a") }},
		{name: "element with colon", el: func() *iq.Element { return iq.NewElement("u:1", "p:a") }},
		{name: "element closing itself", el: func() *iq.Element { return iq.NewElement("u:1", "a/><evil/><x") }},
		{name: "element with invalid UTF-8", el: func() *iq.Element { return iq.NewElement("u:1", "a\xff") }},
		{name: "element breaking out of a comment", el: func() *iq.Element { return iq.NewElement("u:1", "--><evil/><!--") }},
		{name: "nested invalid child", el: func() *iq.Element {
			return iq.NewElement("u:1", "a").Append(iq.NewElement("u:1", "b c"))
		}},
		{name: "attribute with space", el: func() *iq.Element { return iq.NewElement("u:1", "a", "x y", "1") }},
		{name: "attribute injecting", el: func() *iq.Element { return iq.NewElement("u:1", "a", `x="1"><evil/><y z`, "1") }},
		{name: "empty attribute name", el: func() *iq.Element { return iq.NewElement("u:1", "a", "", "1") }},
		{name: "attribute starting with digit", el: func() *iq.Element { return iq.NewElement("u:1", "a", "1x", "1") }},
		{name: "namespaced attribute with bad name", el: func() *iq.Element {
			e := iq.NewElement("u:1", "a")
			e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Space: "u:2", Local: "b c"}, Value: "1"})
			return e
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("String", func(t *testing.T) {
				s := tt.el().String()
				assert.True(t, strings.HasPrefix(s, "<!--"), "String() = %q", s)
				elemRequireNoElements(t, s)
			})
			t.Run("IQ.AppendXML", func(t *testing.T) {
				_, err := (&iq.IQ{ID: "1", Type: iq.TypeSet, Payload: tt.el()}).AppendXML(nil)
				assert.Error(t, err)
			})
			t.Run("IQ.String", func(t *testing.T) {
				s := (&iq.IQ{ID: "1", Type: iq.TypeSet, Payload: tt.el()}).String()
				elemRequireNoElements(t, s)
			})
			t.Run("Decode", func(t *testing.T) {
				var v struct {
					XMLName xml.Name
				}
				assert.Error(t, tt.el().Decode(&v))
			})
		})
	}
}

// TestElementMarshalXMLInvalidNames checks the encoding/xml path
// (MarshalXML) for the same injection: encoding/xml itself writes any
// non-empty name as it is, so the Element must refuse a name that is not
// an NCName rather than let it change the document's structure.
func TestElementMarshalXMLInvalidNames(t *testing.T) {
	tests := []struct {
		name string
		el   *iq.Element
	}{
		{name: "empty element name", el: iq.NewElement("u:1", "")},
		{name: "element with space", el: iq.NewElement("u:1", "a b")},
		{name: "element injecting", el: iq.NewElement("u:1", "a/><evil/><x")},
		{name: "element starting with digit", el: iq.NewElement("u:1", "1abc")},
		{name: "nested element injecting", el: iq.NewElement("u:1", "a").Append(iq.NewElement("", "b><evil/><c"))},
		{name: "attribute injecting", el: iq.NewElement("u:1", "a", `x="1"><evil/><y z`, "1")},
		{name: "attribute with space", el: iq.NewElement("u:1", "a", "x y", "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := xml.Marshal(tt.el)
			if err == nil {
				t.Errorf("xml.Marshal(%#v) = %q, want an error", tt.el.Name.Local, out)
			}
			out, err = xml.Marshal(&iq.IQ{ID: "1", Type: iq.TypeSet, Payload: tt.el})
			if err == nil {
				t.Errorf("xml.Marshal of an IQ carrying it = %q, want an error", out)
			}
		})
	}
}

func TestElementChildAndChildren(t *testing.T) {
	e := elemDecode(t, `<a xmlns='u:1'>t1<b/>t2<c xmlns='u:2'/><b id='2'/><d xmlns=''/></a>`)
	tests := []struct {
		name   string
		space  string
		local  string
		wantID string
		found  bool
	}{
		{name: "first of two", space: "u:1", local: "b", found: true},
		{name: "other namespace", space: "u:2", local: "c", found: true},
		{name: "no namespace", space: "", local: "d", found: true},
		{name: "wrong namespace", space: "u:1", local: "c"},
		{name: "empty namespace does not match inherited", space: "", local: "b"},
		{name: "namespaced does not match none", space: "u:1", local: "d"},
		{name: "missing", space: "u:1", local: "zzz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.Child(tt.space, tt.local)
			if !tt.found {
				assert.Nil(t, c)
				return
			}
			require.NotNil(t, c)
			assert.Equal(t, xml.Name{Space: tt.space, Local: tt.local}, c.Name)
			assert.Equal(t, tt.wantID, c.AttrValue("id"))
		})
	}
	t.Run("Children in order", func(t *testing.T) {
		var names []string
		for c := range e.Children() {
			names = append(names, c.Name.Local)
		}
		assert.Equal(t, []string{"b", "c", "b", "d"}, names)
		assert.Equal(t, 4, e.NumChildren())
	})
	t.Run("Children stops early", func(t *testing.T) {
		n := 0
		for range e.Children() {
			n++
			if n == 2 {
				break
			}
		}
		assert.Equal(t, 2, n)
	})
	t.Run("nil element", func(t *testing.T) {
		var nilEl *iq.Element
		assert.Nil(t, nilEl.Child("u:1", "b"))
		assert.Equal(t, 0, nilEl.NumChildren())
		assert.Equal(t, "", nilEl.Text())
		assert.Equal(t, "", nilEl.AttrValue("x"))
		assert.Equal(t, "", nilEl.String())
		for range nilEl.Children() {
			t.Fatal("nil element has children")
		}
	})
}

func TestElementText(t *testing.T) {
	tests := []struct {
		name string
		el   *iq.Element
		want string
	}{
		{name: "empty", el: iq.NewElement("u:1", "a"), want: ""},
		{name: "one piece", el: iq.NewElement("u:1", "a").AppendText("x"), want: "x"},
		{name: "own text only", el: elemDecode(t, `<a>x<b>inner<c>deeper</c></b>y</a>`), want: "xy"},
		{name: "three pieces", el: elemDecode(t, `<a>1<b/>2<b/>3</a>`), want: "123"},
		{name: "descendant text only", el: elemDecode(t, `<a><b>inner</b></a>`), want: ""},
		{name: "built pieces", el: &iq.Element{Content: []iq.Node{{Text: "a"}, {Text: ""}, {Text: "b"}, {Element: iq.NewElement("", "x")}, {Text: "c"}}}, want: "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.el.Text())
		})
	}
}

func TestElementNumChildren(t *testing.T) {
	tests := []struct {
		name string
		el   *iq.Element
		want int
	}{
		{name: "none", el: iq.NewElement("u:1", "a"), want: 0},
		{name: "text only", el: iq.NewElement("u:1", "a").AppendText("x"), want: 0},
		{name: "grandchildren not counted", el: elemDecode(t, `<a><b><c/><c/></b></a>`), want: 1},
		{name: "mixed", el: elemDecode(t, `<a>x<b/>y<c/>z<d/></a>`), want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.el.NumChildren())
		})
	}
}

func TestElementAttrs(t *testing.T) {
	t.Run("AttrValue", func(t *testing.T) {
		e := elemDecode(t, `<a xmlns='u:1' xmlns:p='u:2' p:id='ns' id='plain' empty='' xml:lang='en'/>`)
		tests := []struct {
			name  string
			local string
			want  string
		}{
			{name: "unqualified", local: "id", want: "plain"},
			{name: "empty value", local: "empty", want: ""},
			{name: "missing", local: "nope", want: ""},
			{name: "xml:lang is qualified", local: "lang", want: ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				assert.Equal(t, tt.want, e.AttrValue(tt.local))
			})
		}
	})
	t.Run("SetAttr", func(t *testing.T) {
		tests := []struct {
			name string
			el   *iq.Element
			set  [][2]string
			want []xml.Attr
		}{
			{
				name: "adds",
				el:   iq.NewElement("u:1", "a"),
				set:  [][2]string{{"x", "1"}, {"y", "2"}},
				want: []xml.Attr{{Name: xml.Name{Local: "x"}, Value: "1"}, {Name: xml.Name{Local: "y"}, Value: "2"}},
			},
			{
				name: "replaces in place",
				el:   iq.NewElement("u:1", "a", "x", "1", "y", "2"),
				set:  [][2]string{{"x", "3"}},
				want: []xml.Attr{{Name: xml.Name{Local: "x"}, Value: "3"}, {Name: xml.Name{Local: "y"}, Value: "2"}},
			},
			{
				name: "leaves namespaced attribute alone",
				el:   &iq.Element{Name: xml.Name{Local: "a"}, Attr: []xml.Attr{{Name: xml.Name{Space: "u:2", Local: "x"}, Value: "ns"}}},
				set:  [][2]string{{"x", "plain"}},
				want: []xml.Attr{{Name: xml.Name{Space: "u:2", Local: "x"}, Value: "ns"}, {Name: xml.Name{Local: "x"}, Value: "plain"}},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := tt.el
				for _, kv := range tt.set {
					assert.Same(t, e, e.SetAttr(kv[0], kv[1]), "SetAttr chains")
				}
				assert.Equal(t, tt.want, e.Attr)
			})
		}
	})
}

func TestElementAppend(t *testing.T) {
	tests := []struct {
		name  string
		build func() *iq.Element
		want  []iq.Node
	}{
		{
			name: "children in order",
			build: func() *iq.Element {
				return iq.NewElement("u:1", "a").Append(iq.NewElement("u:1", "b"), iq.NewElement("u:1", "c"))
			},
			want: []iq.Node{{Element: iq.NewElement("u:1", "b")}, {Element: iq.NewElement("u:1", "c")}},
		},
		{
			name:  "nil children skipped",
			build: func() *iq.Element { return iq.NewElement("u:1", "a").Append(nil, iq.NewElement("u:1", "b"), nil) },
			want:  []iq.Node{{Element: iq.NewElement("u:1", "b")}},
		},
		{
			name:  "adjacent text merged",
			build: func() *iq.Element { return iq.NewElement("u:1", "a").AppendText("x").AppendText("y") },
			want:  []iq.Node{{Text: "xy"}},
		},
		{
			name:  "empty text ignored",
			build: func() *iq.Element { return iq.NewElement("u:1", "a").AppendText("") },
			want:  nil,
		},
		{
			name: "text around children",
			build: func() *iq.Element {
				return iq.NewElement("u:1", "a").AppendText("x").Append(iq.NewElement("u:1", "b")).AppendText("y").AppendText("z")
			},
			want: []iq.Node{{Text: "x"}, {Element: iq.NewElement("u:1", "b")}, {Text: "yz"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.build().Content)
		})
	}
}

func TestElementCopy(t *testing.T) {
	orig := elemDecode(t, `<a xmlns='u:1' x='1'>t<b y='2'><c>deep</c></b>u</a>`)
	snapshot := orig.String()
	c := orig.Copy()
	require.True(t, orig.Equal(c))
	require.NotSame(t, orig, c)

	// Modify every level of the copy.
	c.Attr[0].Value = "changed"
	c.SetAttr("new", "v")
	c.Content[0].Text = "changed"
	b := c.Child("u:1", "b")
	require.NotSame(t, orig.Child("u:1", "b"), b)
	b.Attr[0].Value = "changed"
	b.Child("u:1", "c").Content[0].Text = "changed"
	b.Append(iq.NewElement("u:1", "extra"))
	c.Append(iq.NewElement("u:1", "extra"))

	assert.Equal(t, snapshot, orig.String(), "modifying the copy changed the original")
	assert.False(t, orig.Equal(c))

	var nilEl *iq.Element
	assert.Nil(t, nilEl.Copy())
	assert.True(t, iq.NewElement("u:1", "a").Copy().Equal(iq.NewElement("u:1", "a")))
}

func TestElementEqual(t *testing.T) {
	base := func() *iq.Element {
		return iq.NewElement("u:1", "a", "x", "1", "y", "2").AppendText("t").Append(iq.NewElement("u:1", "b").AppendText("z"))
	}
	var nilEl *iq.Element
	tests := []struct {
		name string
		a, b *iq.Element
		want bool
	}{
		{name: "same", a: base(), b: base(), want: true},
		{name: "both nil", a: nilEl, b: nilEl, want: true},
		{name: "nil and not", a: nilEl, b: base(), want: false},
		{name: "not and nil", a: base(), b: nilEl, want: false},
		{name: "other local name", a: base(), b: func() *iq.Element { e := base(); e.Name.Local = "c"; return e }(), want: false},
		{name: "other namespace", a: base(), b: func() *iq.Element { e := base(); e.Name.Space = "u:2"; return e }(), want: false},
		{name: "attribute order matters", a: base(), b: iq.NewElement("u:1", "a", "y", "2", "x", "1").AppendText("t").Append(iq.NewElement("u:1", "b").AppendText("z")), want: false},
		{name: "attribute value", a: base(), b: func() *iq.Element { return base().SetAttr("x", "9") }(), want: false},
		{name: "attribute namespace", a: iq.NewElement("", "a", "x", "1"), b: &iq.Element{Name: xml.Name{Local: "a"}, Attr: []xml.Attr{{Name: xml.Name{Space: "u:2", Local: "x"}, Value: "1"}}}, want: false},
		{name: "extra attribute", a: base(), b: func() *iq.Element { return base().SetAttr("w", "3") }(), want: false},
		{name: "deep child text", a: base(), b: func() *iq.Element { e := base(); e.Child("u:1", "b").Content[0].Text = "Z"; return e }(), want: false},
		{name: "extra child", a: base(), b: func() *iq.Element { return base().Append(iq.NewElement("u:1", "c")) }(), want: false},
		{name: "extra text", a: base(), b: func() *iq.Element { return base().AppendText("more") }(), want: false},
		{name: "text split in pieces", a: iq.NewElement("", "a").AppendText("xyz"), b: &iq.Element{Name: xml.Name{Local: "a"}, Content: []iq.Node{{Text: "x"}, {Text: "y"}, {Text: ""}, {Text: "z"}}}, want: true},
		{name: "empty text node", a: iq.NewElement("", "a"), b: &iq.Element{Name: xml.Name{Local: "a"}, Content: []iq.Node{{Text: ""}}}, want: true},
		{name: "text position", a: iq.NewElement("", "a").AppendText("x").Append(iq.NewElement("", "b")), b: iq.NewElement("", "a").Append(iq.NewElement("", "b")).AppendText("x"), want: false},
		{name: "nil and empty attributes", a: &iq.Element{Name: xml.Name{Local: "a"}}, b: &iq.Element{Name: xml.Name{Local: "a"}, Attr: []xml.Attr{}}, want: true},
		{name: "decoded equals built", a: elemDecode(t, `<a xmlns='u:1' x='1' y='2'>t<b>z</b></a>`), b: base(), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.a.Equal(tt.b))
			assert.Equal(t, tt.want, tt.b.Equal(tt.a), "Equal is symmetric")
		})
	}
}

func TestNewElement(t *testing.T) {
	tests := []struct {
		name  string
		space string
		local string
		attrs []string
		want  *iq.Element
	}{
		{name: "no attributes", space: "jabber:iq:version", local: "query", want: &iq.Element{Name: xml.Name{Space: "jabber:iq:version", Local: "query"}}},
		{name: "two pairs", space: "urn:example:echo", local: "item", attrs: []string{"id", "7", "kind", "test"}, want: &iq.Element{
			Name: xml.Name{Space: "urn:example:echo", Local: "item"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: "7"}, {Name: xml.Name{Local: "kind"}, Value: "test"}},
		}},
		{name: "no namespace", local: "x", attrs: []string{"a", ""}, want: &iq.Element{
			Name: xml.Name{Local: "x"}, Attr: []xml.Attr{{Name: xml.Name{Local: "a"}, Value: ""}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := iq.NewElement(tt.space, tt.local, tt.attrs...)
			assert.True(t, tt.want.Equal(got), "got %#v", got)
			assert.Empty(t, got.Content)
		})
	}
	for _, n := range []int{1, 3, 5} {
		t.Run("odd count panics", func(t *testing.T) {
			attrs := make([]string, n)
			for i := range attrs {
				attrs[i] = "a"
			}
			assert.Panics(t, func() { iq.NewElement("u:1", "a", attrs...) })
		})
	}
}

type elemVersion struct {
	XMLName xml.Name `xml:"jabber:iq:version query"`
	Name    string   `xml:"name"`
	Version string   `xml:"version"`
	OS      string   `xml:"os,omitempty"`
	Lang    string   `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
}

type elemOther struct {
	XMLName xml.Name `xml:"urn:other thing"`
}

func TestMarshalElement(t *testing.T) {
	tests := []struct {
		name    string
		v       any
		wantErr bool
		check   func(t *testing.T, e *iq.Element)
	}{
		{
			name: "struct with XMLName namespace",
			v:    &elemVersion{Name: "x & y", Version: "1.0"},
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, xml.Name{Space: "jabber:iq:version", Local: "query"}, e.Name)
				assert.Equal(t, "x & y", e.Child("jabber:iq:version", "name").Text())
				assert.Equal(t, "1.0", e.Child("jabber:iq:version", "version").Text())
				assert.Nil(t, e.Child("jabber:iq:version", "os"))
			},
		},
		{
			name: "struct value with xml:lang",
			v:    elemVersion{Name: "n", Version: "v", OS: "o", Lang: "en"},
			check: func(t *testing.T, e *iq.Element) {
				assert.Equal(t, "o", e.Child("jabber:iq:version", "os").Text())
				assert.Equal(t, []xml.Attr{{Name: xml.Name{Space: elemXMLNS, Local: "lang"}, Value: "en"}}, e.Attr)
			},
		},
		{
			name: "element passes through",
			v:    iq.NewElement("u:1", "a", "k", "v").AppendText("t"),
			check: func(t *testing.T, e *iq.Element) {
				assert.True(t, iq.NewElement("u:1", "a", "k", "v").AppendText("t").Equal(e))
			},
		},
		{name: "channel", v: make(chan int), wantErr: true},
		{name: "function", v: func() {}, wantErr: true},
		{name: "nil", v: nil, wantErr: true},
		{name: "nil pointer", v: (*elemVersion)(nil), wantErr: true},
		{name: "bare string", v: "just text", wantErr: false, check: func(t *testing.T, e *iq.Element) {
			assert.Equal(t, "string", e.Name.Local)
			assert.Equal(t, "just text", e.Text())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := iq.MarshalElement(tt.v)
			if tt.wantErr {
				require.Error(t, err)
				assert.Nil(t, e)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, e)
			tt.check(t, e)
		})
	}
}

func TestElementDecode(t *testing.T) {
	t.Run("round trip through a struct", func(t *testing.T) {
		in := elemVersion{XMLName: xml.Name{Space: "jabber:iq:version", Local: "query"}, Name: `a<b>"c"`, Version: "2\r\n", OS: "plan9", Lang: "de"}
		e, err := iq.MarshalElement(&in)
		require.NoError(t, err)
		var out elemVersion
		require.NoError(t, e.Decode(&out))
		assert.Equal(t, in, out)
	})
	t.Run("decoded from the wire", func(t *testing.T) {
		q := stanzaDecode(t, `<iq type='result' id='v1'><query xmlns='jabber:iq:version'><name>Exodus</name><version>0.7.0.4</version></query></iq>`)
		var v elemVersion
		require.NoError(t, q.Payload.Decode(&v))
		assert.Equal(t, "Exodus", v.Name)
		assert.Equal(t, "0.7.0.4", v.Version)
	})
	tests := []struct {
		name string
		el   *iq.Element
		v    any
	}{
		{name: "nil element", el: nil, v: &elemVersion{}},
		{name: "wrong element", el: iq.NewElement("urn:other", "thing"), v: &elemVersion{}},
		{name: "wrong namespace", el: iq.NewElement("urn:other", "query"), v: &elemVersion{}},
		{name: "not a pointer", el: iq.NewElement("urn:other", "thing"), v: elemOther{}},
		{name: "nil target", el: iq.NewElement("urn:other", "thing"), v: nil},
		{name: "invalid name", el: iq.NewElement("urn:other", "a b"), v: &elemOther{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Error(t, tt.el.Decode(tt.v))
		})
	}
}

func TestElementMarshalXMLIgnoresStart(t *testing.T) {
	type wrapper struct {
		XMLName xml.Name    `xml:"u:9 wrap"`
		E       *iq.Element `xml:"renamed"`
	}
	w := wrapper{E: iq.NewElement("u:1", "inner", "k", "v").Append(iq.NewElement("", "bare"))}
	out, err := xml.Marshal(w)
	require.NoError(t, err)
	outer := elemDecode(t, string(out))
	inner := outer.Child("u:1", "inner")
	require.NotNil(t, inner, "%s", out)
	assert.Nil(t, outer.Child("u:9", "renamed"))
	assert.NotNil(t, inner.Child("", "bare"), "no-namespace child keeps xmlns='' below a namespaced parent: %s", out)
}

func TestElementUnmarshalResets(t *testing.T) {
	e := iq.NewElement("u:1", "old", "k", "v").AppendText("old text")
	require.NoError(t, xml.Unmarshal([]byte(`<new xmlns='u:2'/>`), e))
	assert.True(t, iq.NewElement("u:2", "new").Equal(e), "%s", e)
}
