package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository's top directory, seen from this package.
const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(b)
}

// The systemd unit is hardened and systemd-analyze accepts it without a
// warning: verify (with the binary it names pointed at one that exists)
// and the offline security rating.
func TestSystemdUnit(t *testing.T) {
	unit := readRepoFile(t, "deploy/systemd/gatehouse.service")
	for _, want := range []string{
		"\nUser=gatehouse\n", "\nProtectSystem=strict\n", "\nNoNewPrivileges=yes\n",
		"\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n", "\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
		"\nExecReload=/bin/kill -HUP $MAINPID\n", "\nExecStart=/usr/local/bin/gatehouse serve\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("gatehouse.service lacks %q", strings.TrimSpace(want))
		}
	}
	if !strings.Contains(readRepoFile(t, "deploy/systemd/gatehouse.sysusers"), "u gatehouse ") {
		t.Error("gatehouse.sysusers does not create the gatehouse user")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is needed (Debian package systemd, in scripts/packages.txt): " + err.Error())
	}
	// verify refuses a unit whose binary does not exist: point it at one
	// that does, this test's own executable.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gatehouse.service")
	caWrite(t, path, strings.ReplaceAll(unit, "/usr/local/bin/gatehouse", self))
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		// An unknown or misspelt directive is only a warning with exit 0:
		// any output fails the test.
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=true", "--no-pager", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for gatehouse\.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.5 {
		t.Errorf("exposure level %s, want at most 2.5 (of 10):\n%s", m[1], out)
	}
}

// dockerInstruction is one instruction of a Dockerfile, continuation
// lines joined.
type dockerInstruction struct {
	line int
	cmd  string // upper case
	args string
}

// parseDockerfile splits a Dockerfile into instructions as the reference
// describes: comments and blank lines skipped, a trailing backslash
// continues the line.
func parseDockerfile(t *testing.T, text string) []dockerInstruction {
	t.Helper()
	var out []dockerInstruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued line (from line %d)", start)
	}
	return out
}

// The Dockerfile is checked without a Docker engine: every instruction is
// known, stages referenced by COPY --from exist, the build is static
// (CGO_ENABLED=0, and no package of the binary needs cgo), the final image
// is distroless or scratch and runs as a non-root user in exec form, the
// Go image matches go.mod, and the ldflags variable exists.
func TestDockerfile(t *testing.T) {
	text := readRepoFile(t, "Dockerfile")
	known := map[string]bool{"FROM": true, "RUN": true, "CMD": true, "LABEL": true, "EXPOSE": true, "ENV": true,
		"ADD": true, "COPY": true, "ENTRYPOINT": true, "VOLUME": true, "USER": true, "WORKDIR": true, "ARG": true,
		"ONBUILD": true, "STOPSIGNAL": true, "HEALTHCHECK": true, "SHELL": true}
	stages := map[string]bool{}
	var final []dockerInstruction
	var builds []string
	for _, in := range parseDockerfile(t, text) {
		if !known[in.cmd] {
			t.Errorf("line %d: unknown instruction %q", in.line, in.cmd)
		}
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages[f[2]] = true
			} else if len(f) != 1 {
				t.Errorf("line %d: FROM %q: want IMAGE [AS NAME]", in.line, in.args)
			}
			final = []dockerInstruction{in}
			continue
		case "COPY":
			for _, f := range strings.Fields(in.args) {
				if from, ok := strings.CutPrefix(f, "--from="); ok && !stages[from] {
					t.Errorf("line %d: COPY --from=%s names no earlier stage", in.line, from)
				}
			}
		case "RUN":
			if strings.Contains(in.args, "go build") {
				builds = append(builds, in.args)
			}
		case "ENTRYPOINT", "CMD":
			var argv []string
			if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) == 0 {
				t.Errorf("line %d: %s %s is not in exec (JSON) form: %v", in.line, in.cmd, in.args, err)
			}
		}
		final = append(final, in)
	}
	if len(final) == 0 {
		t.Fatal("no FROM")
	}
	base := strings.Fields(final[0].args)[0]
	if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("final image %s: want distroless static or scratch", base)
	}
	user := ""
	for _, in := range final {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		t.Errorf("final stage runs as %q: want a non-root USER", user)
	}
	if len(builds) != 1 {
		t.Fatalf("want one RUN with go build, found %d", len(builds))
	}
	b := builds[0]
	if !strings.Contains(b, "CGO_ENABLED=0") || !strings.Contains(b, "./cmd/gatehouse") {
		t.Errorf("build %q: want CGO_ENABLED=0 go build ... ./cmd/gatehouse", b)
	}
	if m := regexp.MustCompile(`-X github\.com/gatehouse/gatehouse/internal/cli\.(\w+)=`).FindStringSubmatch(b); m == nil || m[1] != "commit" || commit != "" {
		t.Errorf("build %q: want -X .../internal/cli.commit=, the variable version.go reads", b)
	}
	goMod := readRepoFile(t, "go.mod")
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	img := regexp.MustCompile(`(?m)^FROM golang:(\d+\.\d+)`).FindStringSubmatch(text)
	if goVer == nil || img == nil || goVer[1] != img[1] {
		t.Errorf("golang image %v does not match go.mod's go %v", img, goVer)
	}
	// The static build is possible: no package of the binary needs cgo.
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}} {{if .Error}}{{.Error}}{{end}}", "./cmd/gatehouse")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list with CGO_ENABLED=0: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) != 2 || f[1] != "0" {
			t.Errorf("with CGO_ENABLED=0: %s", line)
		}
	}
	ignore := readRepoFile(t, ".dockerignore")
	for _, want := range []string{".git", "*-key.pem"} {
		if !strings.Contains(ignore, want) {
			t.Errorf(".dockerignore does not keep %s out of the build context", want)
		}
	}
}

// The README and docs/design.md stay true to the tree: no reference to
// files users do not have, every package in the layout list, every local
// link resolving, every test design.md names existing.
func TestDocs(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	if strings.Contains(readme, "../shared") || strings.Contains(readme, "DESIGN.md") {
		t.Error("README refers to ../shared/DESIGN.md, which users do not have (use docs/design.md)")
	}
	_, layout, ok := strings.Cut(readme, "## Layout")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	ents, _ := os.ReadDir(filepath.Join(repoRoot, "internal"))
	for _, e := range ents {
		if e.IsDir() && !strings.Contains(layout, "`"+e.Name()+"`") {
			t.Errorf("README's layout list does not name internal/%s", e.Name())
		}
	}
	for _, doc := range []string{"README.md", "docs/design.md", "docs/ca.md", "SECURITY.md", "CHANGELOG.md"} {
		text := readRepoFile(t, doc)
		for _, m := range regexp.MustCompile(`\]\(([^)#]+)[^)]*\)`).FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(repoRoot, filepath.Dir(doc), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", doc, target)
			}
		}
	}
	for _, f := range []string{"LICENSE", "CHANGELOG.md", "SECURITY.md"} {
		readRepoFile(t, f)
	}
	if lic := readRepoFile(t, "LICENSE"); !strings.Contains(lic, "Apache License\n                           Version 2.0, January 2004") || !strings.Contains(lic, "END OF TERMS AND CONDITIONS") {
		t.Error("LICENSE is not the full Apache-2.0 text")
	}

	// Every test design.md names exists.
	design := readRepoFile(t, "docs/design.md")
	defined := map[string]bool{}
	filepath.WalkDir(filepath.Join(repoRoot, "internal"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "_test.go") {
			b, _ := os.ReadFile(p)
			for _, m := range regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)\w+)\(`).FindAllSubmatch(b, -1) {
				defined[string(m[1])] = true
			}
		}
		return nil
	})
	names := regexp.MustCompile("`((?:Test|Fuzz)[A-Z]\\w*)`").FindAllStringSubmatch(design, -1)
	if len(names) < 20 {
		t.Errorf("design.md names %d tests; the invariants need theirs", len(names))
	}
	for _, m := range names {
		if !defined[m[1]] {
			t.Errorf("docs/design.md names %s, which no test defines", m[1])
		}
	}
	for i := 1; i <= 12; i++ {
		if !strings.Contains(design, "\n"+strconv.Itoa(i)+". **") {
			t.Errorf("docs/design.md lacks invariant %d", i)
		}
	}
}
