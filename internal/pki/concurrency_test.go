package pki

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pki/store"
)

// issueMany opens its own handle on the CA in dir and issues n client
// certificates, as one `ca issue` process after another would.
func issueMany(dir string, n int, tag string) error {
	ca, err := Open(dir, testPass)
	if err != nil {
		return err
	}
	defer ca.Close()
	for i := range n {
		if _, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: fmt.Sprintf("%s-%d", tag, i)}); err != nil {
			return err
		}
	}
	return nil
}

// checkInventory checks that the inventory holds want certificates with
// distinct serials, each matching the DER stored beside it.
func checkInventory(t *testing.T, ca *CA, want int) {
	t.Helper()
	recs, err := ca.Store().List(t.Context(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != want {
		t.Fatalf("inventory holds %d certificates, want %d", len(recs), want)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Serial] {
			t.Errorf("serial %s recorded twice", r.Serial)
		}
		seen[r.Serial] = true
	}
}

// TestConcurrentIssueHandles runs on SQLite; on PostgreSQL the same is
// TestReplicasOnPostgres (and TestConcurrentIssueProcesses below).
func TestConcurrentIssueHandles(t *testing.T) {
	ca := newCA(t, InitOptions{})
	const workers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() { errs <- issueMany(ca.Dir(), each, "g"+strconv.Itoa(w)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkInventory(t, ca, workers*each)
}

// TestConcurrentIssueProcesses runs real concurrent processes (this test
// binary, re-executed) issuing from the same CA directory.
func TestConcurrentIssueProcesses(t *testing.T) {
	if dir := os.Getenv("GATEHOUSE_TEST_ISSUE_DIR"); dir != "" {
		if err := issueMany(dir, 5, "p"+strconv.Itoa(os.Getpid())); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	eachStore(t, testConcurrentIssueProcesses)
}

func testConcurrentIssueProcesses(t *testing.T, opts InitOptions) {
	ca := newCA(t, opts)
	const procs = 3
	cmds := make([]*exec.Cmd, procs)
	outs := make([]bytes.Buffer, procs)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestConcurrentIssueProcesses$")
		cmds[i].Env = append(os.Environ(), "GATEHOUSE_TEST_ISSUE_DIR="+ca.Dir())
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("issuing process: %v\n%s", err, outs[i].String())
		}
	}
	checkInventory(t, ca, procs*5)
}
