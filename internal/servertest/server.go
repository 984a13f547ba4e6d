package servertest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a private server of a test's own, started with
// scripts/prosody.sh or scripts/ejabberd.sh, which the test may kill or
// stop and start again on the same ports without disturbing any other test.
type Server struct {
	// Vars is the server's environment, as its env file exports it
	// (IQ_XMPP_C2S_ADDR, IQ_XMPP_COMPONENT, IQ_PROSODY_PID...), read
	// at each Start.
	Vars map[string]string

	kind   string
	script string
	dir    string
	vars   []string // the script's environment
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// PrivateServer starts a server of kind (Prosody or Ejabberd) and reads
// its environment; it is stopped and its directory removed when the test
// ends. Its directory is a fresh one in the temporary directory, named
// after name, and its ports free ones, unless the variables prefix_DIR,
// prefix_C2S_PORT, prefix_COMPONENT_PORT and (ejabberd) prefix_DIST_PORT
// name them, for a machine where each user of the servers has ports and
// directories of its own.
func PrivateServer(t *testing.T, kind, name, prefix string) *Server {
	t.Helper()
	dir := os.Getenv(prefix + "_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "iq-"+name+"-"+kind+"-"+strconv.Itoa(os.Getpid()))
	}
	port := func(v string) string {
		if p := os.Getenv(prefix + v); p != "" {
			return p
		}
		return strconv.Itoa(FreePort(t))
	}
	s := &Server{kind: kind, dir: dir, script: filepath.Join(Scripts(t), kind+".sh"), vars: os.Environ()}
	switch kind {
	case Prosody:
		s.vars = append(s.vars,
			"IQ_PROSODY_DIR="+dir,
			"IQ_C2S_PORT="+port("_C2S_PORT"),
			"IQ_COMPONENT_PORT="+port("_COMPONENT_PORT"))
	case Ejabberd:
		s.vars = append(s.vars,
			"IQ_EJABBERD_DIR="+dir,
			"IQ_EJABBERD_C2S_PORT="+port("_C2S_PORT"),
			"IQ_EJABBERD_COMPONENT_PORT="+port("_COMPONENT_PORT"),
			"IQ_EJABBERD_DIST_PORT="+port("_DIST_PORT"))
	default:
		t.Fatalf("servertest: no server of kind %q", kind)
	}
	t.Cleanup(func() {
		stop := exec.Command("bash", s.script, "stop")
		stop.Env = s.vars
		_ = stop.Run()
		_ = os.RemoveAll(dir)
	})
	s.Start(t)
	return s
}

// Start starts the server, again after a Signal, on the same ports, and
// reads its environment into Vars.
func (s *Server) Start(t *testing.T) {
	t.Helper()
	start := exec.Command("bash", s.script, "start")
	start.Env = s.vars
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("%s start: %v: %s", s.script, err, out)
	}
	f, err := os.Open(filepath.Join(s.dir, "env"))
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	defer f.Close()
	s.Vars = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			s.Vars[k] = strings.Trim(v, `"'`)
		}
	}
}

// Users returns the server's accounts, name to password, as its env file
// lists them in IQ_XMPP_USERS.
func (s *Server) Users() map[string]string {
	users := map[string]string{}
	for _, u := range strings.Fields(s.Vars["IQ_XMPP_USERS"]) {
		name, pass, _ := strings.Cut(u, ":")
		users[name] = pass
	}
	return users
}

// PID returns the server's process id, as its env file gives it.
func (s *Server) PID(t testing.TB) int {
	t.Helper()
	pid, err := strconv.Atoi(s.Vars[Per(s.kind, "IQ_PROSODY_PID", "IQ_EJABBERD_PID")])
	if err != nil {
		t.Fatalf("servertest: the server's pid: %v", err)
	}
	return pid
}

// Signal sends sig to the server and waits, up to 15 s, for it to exit;
// it returns when it saw it gone.
func (s *Server) Signal(t testing.TB, sig syscall.Signal) time.Time {
	t.Helper()
	pid := s.PID(t)
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("servertest: kill %d: %v", pid, err)
	}
	for deadline := time.Now().Add(15 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not exit after %v", sig)
		}
	}
	return time.Now()
}
