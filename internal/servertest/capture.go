package servertest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// LogCapture is a slog.Handler that keeps the messages logged, each with
// its attributes as " key=value", so that a test can look for what a
// component logged. Copies share the same record; make one with
// NewLogCapture.
type LogCapture struct {
	mu   *sync.Mutex
	msgs *[]string
}

// NewLogCapture returns an empty LogCapture.
func NewLogCapture() LogCapture { return LogCapture{mu: new(sync.Mutex), msgs: new([]string)} }

// Enabled reports true: every level is kept.
func (LogCapture) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps the record's message and attributes.
func (l LogCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	*l.msgs = append(*l.msgs, b.String())
	l.mu.Unlock()
	return nil
}

// WithAttrs returns l itself: the tests look at messages, not at the
// attributes a logger adds to all of them.
func (l LogCapture) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup returns l itself, for the same reason as WithAttrs.
func (l LogCapture) WithGroup(string) slog.Handler { return l }

// Matching returns the messages kept so far that contain sub.
func (l LogCapture) Matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range *l.msgs {
		if strings.Contains(m, sub) {
			out = append(out, m)
		}
	}
	return out
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: a client's tee of
// what it read or wrote, written by its goroutines while the test reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
