package cli

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errs := caRun(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "gatehouse ") || !strings.Contains(out, runtime.Version()) || !strings.Contains(out, "commit ") {
			t.Errorf("gatehouse %s: exit %d, %q %q", args[0], code, out, errs)
		}
	}
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "9c0e46c435bb52d1c8213e5e65bd6089d9777f06"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got := versionFrom(bi); !strings.HasPrefix(got, "v1.2.3 (commit 9c0e46c435bb52d1c8213e5e65bd6089d9777f06+dirty, go") {
		t.Errorf("versionFrom = %q", got)
	}
}
