package xmldec

import (
	"strings"
	"testing"
)

// TestSetReaderKeepsBuffered checks that bytes the Decoder read before
// SetReader are decoded before the new reader's.
func TestSetReaderKeepsBuffered(t *testing.T) {
	first := strings.NewReader(`<s><x/><y`)
	d := NewDecoder(first, 0)
	want := []string{"s", "x"}
	for _, name := range want {
		it, err := d.Next(nil)
		if err != nil || it.Name.Local != name {
			t.Fatalf("Next = %v %q, %v; want %q", it.Kind, it.Name.Local, err, name)
		}
	}
	if first.Len() != 0 {
		t.Fatalf("%d bytes left unread in the first reader; the test needs them buffered", first.Len())
	}
	if d.Reader() != first {
		t.Fatal("Reader does not return the reader given")
	}
	d.SetReader(strings.NewReader(` a='1'/>`))
	it, err := d.Next(nil)
	if err != nil || it.Kind != KindElement || it.Name.Local != "y" {
		t.Fatalf("Next after SetReader = %v %q, %v; want element y", it.Kind, it.Name.Local, err)
	}
}
