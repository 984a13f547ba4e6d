// Package disco answers XEP-0030 service discovery information requests
// (disco#info) from a Callee's routing table, and computes the XEP-0115
// entity capabilities verification string of what it answers.
//
// The features advertised are the namespaces the Callee has handlers for,
// as Callee.Namespaces reports them at the time of each request, plus
// those declared with AddFeature, minus those hidden with HideFeature: a
// handler registered later is advertised at once, and a namespace whose
// last handler is removed (Callee.Unregister) leaves the features and the
// caps ver as soon, with no list to keep in sync by hand.
//
//	info := disco.Register(ep.Callee, disco.Identity{Category: "client", Type: "bot"})
//	presence.Append(info.Caps().Element()) // <c xmlns='http://jabber.org/protocol/caps' …/>
package disco

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"slices"
	"strings"
	"sync"

	"github.com/xmpp-iq/iq"
)

// Namespaces.
const (
	NSInfo  = "http://jabber.org/protocol/disco#info"  // XEP-0030 information
	NSItems = "http://jabber.org/protocol/disco#items" // XEP-0030 items
	NSCaps  = "http://jabber.org/protocol/caps"        // XEP-0115 entity capabilities
)

// DefaultNode is the XEP-0115 node of a Server until SetNode changes it.
const DefaultNode = "https://github.com/xmpp-iq/iq"

// Identity is an XEP-0030 identity: what kind of entity answers.
type Identity struct {
	Category string `xml:"category,attr"`
	Type     string `xml:"type,attr"`
	Name     string `xml:"name,attr,omitempty"`
	Lang     string `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
}

// Feature is an XEP-0030 feature, named by its Var (a namespace, mostly).
type Feature struct {
	Var string `xml:"var,attr"`
}

// Info is the payload of a disco#info request and of its result.
type Info struct {
	XMLName    xml.Name   `xml:"http://jabber.org/protocol/disco#info query"`
	Node       string     `xml:"node,attr,omitempty"`
	Identities []Identity `xml:"identity"`
	Features   []Feature  `xml:"feature"`
}

// Caps is the XEP-0115 <c/> element an entity puts in its presence.
type Caps struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/caps c"`
	Hash    string   `xml:"hash,attr"`
	Node    string   `xml:"node,attr"`
	Ver     string   `xml:"ver,attr"`
}

// Element returns c as an iq.Element, to add to a presence stanza.
func (c Caps) Element() *iq.Element {
	return iq.NewElement(NSCaps, "c", "hash", c.Hash, "node", c.Node, "ver", c.Ver)
}

// Server answers disco#info requests for one Callee. It is safe for
// concurrent use: identities and features may be added while requests
// are answered, and the next answer includes them.
type Server struct {
	callee *iq.Callee

	mu         sync.RWMutex
	identities []Identity
	extra      map[string]bool
	hidden     map[string]bool
	node       string
}

// New returns a Server for c's routing table that declares ids, without
// registering it: register s.HandleInfo (with iq.HandleGet) yourself, to
// wrap it in middleware, say. XEP-0030 requires at least one identity.
func New(c *iq.Callee, ids ...Identity) *Server {
	return &Server{
		callee:     c,
		identities: slices.Clone(ids),
		extra:      make(map[string]bool),
		hidden:     make(map[string]bool),
		node:       DefaultNode,
	}
}

// Register returns New(c, ids...), registered on c for disco#info get
// requests. It panics if c already has a handler for them.
func Register(c *iq.Callee, ids ...Identity) *Server {
	s := New(c, ids...)
	iq.HandleGet(c, s.HandleInfo)
	return s
}

// AddIdentity declares more identities.
func (s *Server) AddIdentity(ids ...Identity) {
	s.mu.Lock()
	s.identities = append(s.identities, ids...)
	s.mu.Unlock()
}

// AddFeature declares features that have no handler on the Callee: one
// handled elsewhere (XEP-0115's own namespace, say, or one a message
// handler implements).
func (s *Server) AddFeature(vars ...string) {
	s.mu.Lock()
	for _, v := range vars {
		if v != "" {
			s.extra[v] = true
			delete(s.hidden, v)
		}
	}
	s.mu.Unlock()
}

// HideFeature keeps namespaces out of the list although the Callee handles
// them: a handler guarded by access control, say, whose existence is not
// to be advertised. It undoes AddFeature for them.
func (s *Server) HideFeature(vars ...string) {
	s.mu.Lock()
	for _, v := range vars {
		s.hidden[v] = true
		delete(s.extra, v)
	}
	s.mu.Unlock()
}

// SetNode sets the XEP-0115 node (a URI identifying the software;
// DefaultNode by default) that Caps reports and that disco#info requests
// may name as node#ver.
func (s *Server) SetNode(node string) {
	s.mu.Lock()
	s.node = node
	s.mu.Unlock()
}

// Info returns what a disco#info request without node is answered:
// identities and features sorted, as XEP-0115 orders them, without
// duplicates.
func (s *Server) Info() *Info {
	s.mu.RLock()
	ids := slices.Clone(s.identities)
	features := s.callee.Namespaces()
	for v := range s.extra {
		features = append(features, v)
	}
	features = slices.DeleteFunc(features, func(v string) bool { return s.hidden[v] })
	s.mu.RUnlock()

	sortIdentities(ids)
	ids = slices.Compact(ids)
	slices.Sort(features)
	features = slices.Compact(features)
	info := &Info{Identities: ids, Features: make([]Feature, len(features))}
	for i, f := range features {
		info.Features[i] = Feature{Var: f}
	}
	return info
}

// Ver returns the XEP-0115 verification string of Info.
func (s *Server) Ver() string { return s.Info().Ver() }

// Caps returns the XEP-0115 <c/> element for Info: hash sha-1, the node
// SetNode set and Ver.
func (s *Server) Caps() Caps {
	info := s.Info()
	s.mu.RLock()
	node := s.node
	s.mu.RUnlock()
	return Caps{Hash: "sha-1", Node: node, Ver: info.Ver()}
}

// HandleInfo answers a disco#info request, as Register registers it. A
// request without node gets Info; one whose node is the caps node#ver
// gets Info with that node, as XEP-0115 §6.2 requires; any other node is
// answered cancel/item-not-found.
func (s *Server) HandleInfo(_ context.Context, req *Info) (*Info, error) {
	info := s.Info()
	if req.Node == "" {
		return info, nil
	}
	s.mu.RLock()
	node := s.node
	s.mu.RUnlock()
	if req.Node != node+"#"+info.Ver() {
		return nil, iq.NewError(iq.Cancel, iq.ItemNotFound, "")
	}
	info.Node = req.Node
	return info, nil
}

func sortIdentities(ids []Identity) {
	slices.SortFunc(ids, func(a, b Identity) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Type, b.Type),
			strings.Compare(a.Lang, b.Lang), strings.Compare(a.Name, b.Name))
	})
}

// Ver returns the XEP-0115 verification string of info (§5.1): its
// identities sorted by category, type, xml:lang (and name), written
// category/type/lang/name<, then its features sorted, each followed by <,
// hashed with SHA-1 and encoded in base64. info is not modified. Data
// forms (XEP-0128 extensions), which Info does not carry, are not
// included.
func (info *Info) Ver() string {
	ids := slices.Clone(info.Identities)
	sortIdentities(ids)
	features := make([]string, len(info.Features))
	for i, f := range info.Features {
		features[i] = f.Var
	}
	slices.Sort(features)
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id.Category)
		b.WriteByte('/')
		b.WriteString(id.Type)
		b.WriteByte('/')
		b.WriteString(id.Lang)
		b.WriteByte('/')
		b.WriteString(id.Name)
		b.WriteByte('<')
	}
	for _, f := range features {
		b.WriteString(f)
		b.WriteByte('<')
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Get asks to for its disco#info (node, if not empty) and returns it.
// Errors are iq.GetAs's.
func Get(ctx context.Context, c *iq.Caller, to, node string) (*Info, error) {
	info, err := iq.GetAs[Info](ctx, c, to, Info{Node: node})
	if err != nil {
		return nil, err
	}
	return &info, nil
}
