// Package jidcompat holds no code: its tests compare iq.ParseJID's
// verdicts with mellium.im/xmpp/jid's, in a module of its own so that the
// core module keeps no dependency on mellium.
package jidcompat
