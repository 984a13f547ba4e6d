package goxmppiq

// ToIQ exposes toIQ to the external tests.
var ToIQ = toIQ
