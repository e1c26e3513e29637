// Package redistest starts real redis-server processes for tests: a
// standalone server, a Sentinel setup (one master, one replica, three
// sentinels) and a three-master Cluster. Every process listens on a free
// loopback port, keeps its files in t.TempDir(), persists nothing, and is
// killed when the test ends.
//
// When redis-server is not installed the test is skipped, except under
// CI=true, where a missing redis-server fails the test.
package redistest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/testport"
)

// startTimeout bounds how long a process may take to answer PING.
const startTimeout = 10 * time.Second

// Options tune a standalone server.
type Options struct {
	// Password sets requirepass (the default user's password).
	Password string
	// TLS serves TLS only, with a certificate for 127.0.0.1 from a test
	// CA; Server.TLS trusts that CA.
	TLS bool
	// Args are extra configuration directives, as on the redis-server
	// command line: "--maxmemory", "10mb".
	Args []string
}

// Server is one redis-server process.
type Server struct {
	// Addr is host:port on loopback.
	Addr string
	// Port is the port of Addr.
	Port int
	// TLS is a client configuration that trusts the server's certificate
	// (Options.TLS), nil otherwise.
	TLS *tls.Config

	t    testing.TB
	bin  string
	dir  string
	args []string
	dial dialOptions

	mu     sync.Mutex
	proc   *os.Process
	exited chan error // receives once the process has been reaped
}

// Start starts a standalone redis-server and waits until it answers PING.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := requireRedis(t)
	var extra []string
	if opts.Password != "" {
		extra = append(extra, "--requirepass", opts.Password)
	}
	dir := t.TempDir()
	d := dialOptions{password: opts.Password}
	if opts.TLS {
		var files []string
		d.tls, files = makeCertificates(t, dir)
		extra = append(extra, "--tls-cert-file", files[0], "--tls-key-file", files[1], "--tls-ca-cert-file", files[2],
			"--tls-auth-clients", "no")
	}
	extra = append(extra, opts.Args...)
	return startServer(t, bin, dir, d, func(port int, dir string) []string {
		args := serverArgs(port, dir)
		if opts.TLS { // the last --port wins
			args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port))
		}
		return append(args, extra...)
	})
}

// dialOptions say how to reach a server's PING.
type dialOptions struct {
	password string
	tls      *tls.Config
}

// serverArgs is the configuration every data server shares.
func serverArgs(port int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
}

// startServer starts a server on a free port. Another process may take the
// port between the probe and the bind, so a failed start is retried on a new
// port.
func startServer(t testing.TB, bin, dir string, d dialOptions, args func(port int, dir string) []string) *Server {
	t.Helper()
	var err error
	for range 3 {
		port := testport.Free(t)
		s := newServer(t, bin, dir, port, d, args(port, dir))
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

// requireRedis returns the path of redis-server, or ends the test when it is
// missing: a failure under CI=true, a skip otherwise.
func requireRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("redis-server is required under CI=true: %v (install the redis-server package)", err)
	}
	t.Skipf("redis-server not installed (%v); install it (apt-get install redis-server) to run this test", err)
	return ""
}

func newServer(t testing.TB, bin, dir string, port int, d dialOptions, args []string) *Server {
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port: port,
		TLS:  d.tls,
		t:    t,
		bin:  bin,
		dir:  dir,
		args: args,
		dial: d,
	}
	t.Cleanup(s.Stop)
	return s
}

// start runs the process and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("%s already running", s.Addr)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitPing(s.Addr, s.dial, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on %s did not come up: %v\n%s", s.Addr, err, s.Log())
	}
	s.proc, s.exited = cmd.Process, exited
	return nil
}

// Stop kills the process (a crash: nothing is saved) and waits until it is
// gone. It is idempotent and also runs at the end of the test.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Restart kills the process and starts a new one on the same port. Without
// persistence the new server is empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// Log returns the tail of the server's log file, for failure messages.
func (s *Server) Log() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return ""
	}
	const tail = 4000
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

// waitPing polls addr until PING answers, the process exits or the time is
// up. A server still loading its data set (a restart with a large one
// saved) is coming up, so it gets loadingTimeout instead.
func waitPing(addr string, d dialOptions, exited <-chan error) error {
	start := time.Now()
	var last error
	for {
		timeout := startTimeout
		if last != nil && strings.Contains(last.Error(), "LOADING") {
			timeout = loadingTimeout
		}
		if time.Since(start) > timeout {
			return last
		}
		select {
		case err := <-exited:
			return fmt.Errorf("process exited: %v", err)
		default:
		}
		if last = ping(addr, d); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadingTimeout bounds how long a restarted server may load its data set.
const loadingTimeout = 10 * time.Minute

// ping sends one PING (after AUTH when a password is set) in RESP.
func ping(addr string, d dialOptions) error {
	dialer := &net.Dialer{Timeout: time.Second}
	var conn net.Conn
	var err error
	if d.tls != nil {
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, d.tls)
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(conn)
	if password := d.password; password != "" {
		if _, err := fmt.Fprintf(conn, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("AUTH answered %q: %v", line, err)
		}
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// addrsOf returns the servers' addresses.
func addrsOf(servers []*Server) []string {
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr
	}
	return addrs
}
