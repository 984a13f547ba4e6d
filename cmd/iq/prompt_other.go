//go:build !linux

package main

import (
	"errors"
	"io"
	"os"
)

// isTerminal reports false: the prompt is implemented on Linux only.
func isTerminal(*os.File) bool { return false }

func promptSecret(*os.File, io.Writer, string) (string, error) {
	return "", errors.New("no password prompt on this system: set the variable --password-env names")
}
