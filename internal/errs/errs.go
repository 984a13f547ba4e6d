// Package errs builds the errors of this module's packages so that each
// message names each layer once: "iq: request 7 timed out", not
// "iq: request 7: iq: request timed out". An error built here reads as
// its text alone, while errors.Is and errors.As still find every error it
// wraps, sentinels and causes alike.
package errs

import "strings"

// New returns an error whose Error is text and which wraps errs (nil ones
// are left out).
func New(text string, errs ...error) error {
	e := &wrapped{text: text}
	for _, err := range errs {
		if err != nil {
			e.errs = append(e.errs, err)
		}
	}
	return e
}

type wrapped struct {
	text string
	errs []error
}

func (e *wrapped) Error() string   { return e.text }
func (e *wrapped) Unwrap() []error { return e.errs }

// Trim returns err's text without prefix, to quote an error of the same
// layer after a message that has already given the prefix once.
func Trim(err error, prefix string) string {
	return strings.TrimPrefix(err.Error(), prefix)
}
