// Package tunnel passes an upgraded connection (WebSocket) between a
// client and a backend: a raw backend connection, never pooled, the
// request written by gatehouse, the 101 read, then bytes copied both ways
// under an idle deadline.
package tunnel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// maxDeclinedBody bounds the body of a backend's non-101 answer.
const maxDeclinedBody = 64 << 10

// Tunnel is an open backend connection that answered an upgrade.
type Tunnel struct {
	conn net.Conn
	br   *bufio.Reader
}

type writerSink struct{ w *bufio.Writer }

func (s writerSink) AddHeader(name, value string) {
	s.w.WriteString(name)
	s.w.WriteString(": ")
	s.w.WriteString(value)
	s.w.WriteString("\r\n")
}

// Open dials the route's backend, sends the upgrade request the pipeline
// planned and reads the answer. On a 101 the caller relays; on anything
// else it relays the answer and closes the tunnel.
func Open(ctx context.Context, ex *pipeline.Exchange, r pipeline.Request) (*Tunnel, *fasthttp.Response, error) {
	up := ex.Route().Upstream
	conn, br, err := up.DialRaw(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(up.ResponseTimeout()))
	bw := bufio.NewWriterSize(conn, 4096)
	fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: %s\r\n", ex.Method(), up.URI(ex.URI()), up.Host())
	ex.WriteHeaders(r, writerSink{bw})
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	resp := fasthttp.AcquireResponse()
	if err := resp.ReadLimitBody(br, maxDeclinedBody); err != nil {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		// The backend must switch to the protocol asked for, nothing else.
		if !tokenEqual(resp.Header.Peek("Upgrade"), ex.Upgrade()) {
			fasthttp.ReleaseResponse(resp)
			conn.Close()
			return nil, nil, fmt.Errorf("backend switched to %q, not %q", resp.Header.Peek("Upgrade"), ex.Upgrade())
		}
	}
	conn.SetDeadline(time.Time{})
	return &Tunnel{conn: conn, br: br}, resp, nil
}

func tokenEqual(b []byte, want string) bool {
	if len(b) != len(want) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// Close closes the backend connection.
func (t *Tunnel) Close() error { return t.conn.Close() }

// Relay copies bytes both ways until either side closes or stays silent
// for idle, then closes both. Every recheckEvery it calls recheck (if not
// nil) and ends the tunnel when that fails: a client whose certificate is
// revoked, expires or loses its CA on reload is cut off as its next
// request would be. It returns the bytes from the client (in) and to it
// (out), and why it ended.
func (t *Tunnel) Relay(client net.Conn, idle time.Duration, recheck func() error, recheckEvery time.Duration) (in, out int64, why string) {
	var wg sync.WaitGroup
	var once sync.Once
	done := make(chan struct{})
	end := func(reason string) {
		once.Do(func() {
			why = reason
			close(done)
			// fasthttp's hijacked conn ignores Close (the server closes
			// it once the handler returns): a past deadline stops the
			// read still waiting on it.
			client.SetDeadline(time.Now())
			client.Close()
			t.conn.Close()
		})
	}
	if recheck != nil && recheckEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(recheckEvery)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					if err := recheck(); err != nil {
						end("client no longer accepted: " + err.Error())
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		n, err := copyIdle(t.conn, client, client, idle)
		in = n
		end(reason("client", err))
	}()
	n, err := copyIdle(client, t.br, t.conn, idle)
	out = n
	end(reason("backend", err))
	wg.Wait()
	return in, out, why
}

func reason(side string, err error) string {
	if err == nil || err == io.EOF {
		return side + " closed"
	}
	return side + ": " + err.Error()
}

// copyIdle copies src to dst, extending src's read deadline (set on
// deadline) before each read.
func copyIdle(dst io.Writer, src io.Reader, deadline net.Conn, idle time.Duration) (int64, error) {
	buf := make([]byte, 16<<10)
	var n int64
	for {
		deadline.SetReadDeadline(time.Now().Add(idle))
		k, err := src.Read(buf)
		if k > 0 {
			w, werr := dst.Write(buf[:k])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if err != nil {
			return n, err
		}
	}
}
