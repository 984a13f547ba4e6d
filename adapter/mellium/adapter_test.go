package melliumiq_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"

	melliumiq "github.com/xmpp-iq/iq/adapter/mellium"
)

// Nil arguments are programming errors: they panic at the call.
func TestNilSessionPanics(t *testing.T) {
	cases := []struct {
		name string
		call func()
		want string
	}{
		{"New", func() { melliumiq.New(nil) }, "melliumiq: New: nil session"},
		{"NewSender", func() { melliumiq.NewSender(nil) }, "melliumiq: NewSender: nil session"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tc.want, tc.call)
		})
	}
}

// TestBugAdapterNotImportable: the adapter lived in examples/, in a module
// whose go.mod replaced the core with ../.., a path that resolves only
// inside this repository, so no program could import it. Its module now
// says what it is, has no replace directive (the repository's go.work ties
// the modules together for development), and the core module does not
// depend on mellium.
func TestBugAdapterNotImportable(t *testing.T) {
	parse := func(path string) *modfile.File {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		f, err := modfile.Parse(path, b, nil)
		require.NoError(t, err)
		return f
	}
	f := parse("go.mod")
	assert.Equal(t, "github.com/xmpp-iq/iq/adapter/mellium", f.Module.Mod.Path)
	assert.Empty(t, f.Replace, "go.mod has replace directives")
	var requires []string
	for _, r := range f.Require {
		requires = append(requires, r.Mod.Path)
	}
	assert.Contains(t, requires, "github.com/xmpp-iq/iq")
	assert.Contains(t, requires, "mellium.im/xmpp")

	core := parse(filepath.Join("..", "..", "go.mod"))
	for _, r := range core.Require {
		assert.False(t, strings.HasPrefix(r.Mod.Path, "mellium.im/"), "the core module requires %s", r.Mod.Path)
	}
}
