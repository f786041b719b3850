package upstream

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A backend that does not answer in time gets a 504-class error, and its
// connection is closed (the backend sees the request cancelled), never
// left open or reused.
func TestResponseTimeoutClosesConnection(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http notices a closed connection only once the body is read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	}))
	defer be.Close()
	u, _ := url.Parse(be.URL)
	c, err := New(Config{Backend: u, ResponseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("/slow")
		if stream {
			req.Header.SetMethod("POST")
			req.SetBodyStream(strings.NewReader("x"), -1)
		}
		err = c.Do(req, resp)
		if !errors.Is(err, ErrTimeout) && !IsTimeout(err) {
			t.Fatalf("err %v, want a timeout", err)
		}
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Fatalf("stream=%v: the backend connection was not closed after the timeout", stream)
		}
	}
}
