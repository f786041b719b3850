//go:build !linux

package h1

// poller is Linux's (epoll); elsewhere parked connections wait on
// goroutines of their own.
type poller struct{}

func sharedPoller() (*poller, error) { return nil, errNoPoller }

func (*poller) arm(*conn) error { return errNoPoller }
func (*poller) forget(*conn)    {}
