package melliumiq

// DialPlaintextTee is DialPlaintext with copies of what the session reads
// and writes, for the tests that count what went on the wire.
var DialPlaintextTee = dialPlaintext
