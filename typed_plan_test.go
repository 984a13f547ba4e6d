package iq_test

import (
	"context"
	"encoding/xml"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// typedPartial decodes through a compiled plan: its attribute is set
// before its child fails to parse.
type typedPartial struct {
	XMLName xml.Name `xml:"urn:example:typed partial"`
	N       int      `xml:"n,attr"`
	K       []int    `xml:"k"`
}

// TestGetAsDecodeErrorIsZero checks that a result that fails to decode
// part way leaves GetAs's value zero, not half filled, now that plans
// decode in place.
func TestGetAsDecodeErrorIsZero(t *testing.T) {
	p := iqtest.NewPair("juliet@example.com/balcony", "service.example.com")
	defer p.Close()
	iq.HandleGet(p.B.Callee, func(ctx context.Context, req *typedPartial) (*iq.Element, error) {
		return iq.NewElement("urn:example:typed", "partial", "n", "5").
			Append(iq.NewElement("urn:example:typed", "k").AppendText("1")).
			Append(iq.NewElement("urn:example:typed", "k").AppendText("x")), nil
	})
	got, err := iq.GetAs[typedPartial](context.Background(), p.A.Caller, p.BJID, typedPartial{})
	require.ErrorIs(t, err, iq.ErrDecode)
	assert.Contains(t, err.Error(), `typedPartial: <partial xmlns="urn:example:typed">: strconv.ParseInt: parsing "x": invalid syntax`)
	assert.Equal(t, typedPartial{}, got)

	// The same struct, valid, round trips with its list.
	iq.HandleSet(p.B.Callee, func(ctx context.Context, req *typedPartial) (*typedPartial, error) {
		req.N++
		return req, nil
	})
	got, err = iq.SetAs[typedPartial](context.Background(), p.A.Caller, p.BJID, &typedPartial{N: 1, K: []int{2, 3}})
	require.NoError(t, err)
	assert.Equal(t, typedPartial{XMLName: xml.Name{Space: "urn:example:typed", Local: "partial"}, N: 2, K: []int{2, 3}}, got)
}
