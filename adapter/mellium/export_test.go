package melliumiq

// DialPlaintextTee is DialPlaintext with copies of what the session reads
// and writes, for the tests that count what went on the wire.
var DialPlaintextTee = dialPlaintext

// Detach is detach, for the tests of the contexts mellium is given.
var Detach = detach
