package stream

import "io"

// limitReader caps how far the decoder may read ahead of the last point the
// Conn marked: the decoder buffers a whole token before returning it, so a
// cap below it is the only way to bound memory against a peer that sends
// one endless attribute or text node.
type limitReader struct {
	r     io.Reader
	n     int64 // bytes delivered so far
	limit int64 // absolute offset past which nothing is delivered
}

func (l *limitReader) Read(p []byte) (int, error) {
	room := l.limit - l.n
	if room <= 0 {
		return 0, ErrStanzaTooBig
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}
