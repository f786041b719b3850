package testredis

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Server is one redis-server process.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// Start starts redis-server on 127.0.0.1 on a free port, in a new
// temporary directory. The error says what to install when it is missing.
func Start() (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("tests need redis-server (install the Debian package redis-server): %w", err)
	}
	dir, err := os.MkdirTemp("", "testredis")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	if err := s.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// URL is the server's redis:// URL (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Restart starts the server again on the same port (a no-op while it
// runs) and waits until it accepts connections.
func (s *Server) Restart() error {
	if s.cmd != nil {
		return nil
	}
	s.out.Reset()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.cmd = cmd
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.Addr()); err == nil {
			c.Close()
			return nil
		}
	}
	s.Kill()
	return fmt.Errorf("redis-server did not listen on %s within 10s: %s", s.Addr(), s.out.String())
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Close kills the server and removes its directory.
func (s *Server) Close() {
	s.Kill()
	os.RemoveAll(s.dir)
}
