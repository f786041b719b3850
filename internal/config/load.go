package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/units"
)

// File is a loaded configuration: the values, where they came from, and the
// line of every field, so that later errors can point at the file.
type File struct {
	// Path is the file the configuration was read from.
	Path string
	// Config holds the decoded values with defaults applied.
	Config Config
	lines  map[string]int
}

// Line returns the line where the field at path (e.g. "routes[1].backend")
// was written, or of its nearest written parent, or 0 if none was.
func (f *File) Line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := f.lines[p]; ok {
			return l
		}
	}
	return 0
}

// Resolve returns p relative to the configuration file's directory (an
// absolute p, and a key's pkcs11: URI, are returned as is).
func (f *File) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || isPKCS11(p) {
		return p
	}
	return filepath.Join(filepath.Dir(f.Path), p)
}

// isPKCS11 reports whether a key reference is a PKCS#11 URI (RFC 7512).
func isPKCS11(p string) bool { return len(p) >= 7 && strings.EqualFold(p[:7], "pkcs11:") }

// FieldError is one problem with one field of a configuration file.
type FieldError struct {
	File  string // the configuration file's path
	Line  int    // 0 when the line is not known
	Field string // e.g. "routes[1].backend"; empty for the whole file
	Err   error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// Errors is a list of configuration problems, reported one per line.
type Errors []*FieldError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads, strictly decodes, defaults and validates the configuration
// file at path. On failure the error is an Errors value listing every
// problem found, each with file, line and field.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// LoadAll is ParseAll for the file at path.
func LoadAll(path string) (*File, Errors) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Err: fmt.Errorf("read config: %w", err)}}
	}
	return ParseAll(path, data)
}

// maxConfigSize bounds what Parse accepts, so a wrong file (a log, a
// binary) is refused instead of exhausting memory.
const maxConfigSize = 4 << 20

// Parse is Load for data already read from path.
func Parse(path string, data []byte) (*File, error) {
	f, errs := ParseAll(path, data)
	if len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

// ParseAll reports every problem of the file in one pass: keys, kinds and
// values the YAML tree shows, then the semantic checks of Validate on what
// could be decoded. It returns the decoded, defaulted configuration even
// when there are problems (so that `config check` can go on to load the
// files it names), or nil when the file cannot be decoded at all (invalid
// YAML, empty, too large). Problems are in file order; a field with a
// problem of its kind or value is not also reported as missing.
func ParseAll(path string, data []byte) (*File, Errors) {
	f := &File{Path: path, lines: map[string]int{}}
	fail := func(line int, field string, err error) Errors {
		return Errors{{File: path, Line: line, Field: field, Err: err}}
	}
	if len(data) > maxConfigSize {
		return nil, fail(0, "", fmt.Errorf("file is larger than %s; is it the right file?", units.FormatSize(maxConfigSize)))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlErrorLine(err)
		line, msg = syntaxProblem(data, line, msg)
		return nil, fail(line, "", errors.New(msg))
	}
	if len(doc.Content) == 0 {
		return nil, fail(0, "", errors.New("file is empty (see the README for an example configuration)"))
	}
	root := doc.Content[0]
	var errs Errors
	meant := map[string]bool{} // fields an unknown key was a near miss of
	check(root, reflect.TypeOf(Config{}), "", f.lines, meant, func(line int, field string, err error) {
		errs = append(errs, &FieldError{File: path, Line: line, Field: field, Err: err})
	})
	// check has replaced what it refused by empty values, so the rest
	// decodes and is validated in the same run.
	if err := root.Decode(&f.Config); err != nil {
		line, msg := yamlErrorLine(err)
		return nil, append(errs, &FieldError{File: path, Line: line, Err: fmt.Errorf("invalid YAML: %s", msg)})
	}
	f.Config.ApplyDefaults()
	refused := errs
	for _, ve := range f.Config.Validate() {
		if Related(refused, ve.Field) || meant[ve.Field] {
			continue
		}
		errs = append(errs, &FieldError{File: path, Line: f.Line(ve.Field), Field: ve.Field, Err: ve.Err})
	}
	errs.Sort()
	return f, errs
}

// Sort orders es by line, as a reader fixing them goes; problems on one
// line keep their order, and those of no line (a missing section) come
// last.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Line, es[j].Line
		if a == 0 || b == 0 {
			return b == 0 && a != 0
		}
		return a < b
	})
}

// Related reports whether es already has a problem with field, with a
// field inside it or with a field it is inside of: a value refused for its
// kind is not reported again as missing, a certificate entry whose cert is
// missing is not reported again as unreadable.
func Related(es Errors, field string) bool {
	for _, e := range es {
		if _, dup := e.Err.(duplicateKey); dup {
			continue // the first value stands and is checked
		}
		if e.Field == "" || field == "" || e.Field == field || within(field, e.Field) || within(e.Field, field) {
			return true
		}
	}
	return false
}

// within reports whether field p lies inside field parent
// ("routes[0].path" inside "routes[0]" and "routes").
func within(p, parent string) bool {
	return strings.HasPrefix(p, parent) && len(p) > len(parent) && (p[len(parent)] == '.' || p[len(parent)] == '[')
}

var (
	durationType = reflect.TypeOf(Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
)

// check walks the YAML tree alongside the Go type, recording the line of
// every field and reporting unknown keys (naming the allowed ones and the
// likely intended one), keys written twice, wrong kinds and unparsable
// scalars. Doing this before Decode gives every error a field path, which
// yaml's own errors lack. What it refuses it replaces by an empty value (or
// removes, for keys), so that Decode and Validate can report the rest of
// the file in the same run.
func check(n *yaml.Node, t reflect.Type, path string, lines map[string]int, meant map[string]bool, report func(int, string, error)) {
	refuse := func(err error) {
		report(n.Line, path, err)
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	if n.Kind == yaml.AliasNode {
		refuse(errors.New("YAML aliases are not supported; write the value out"))
		return
	}
	if path != "" {
		lines[path] = n.Line
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			refuse(errors.New("expected a duration such as 30s, 15m, 90d or 2y"))
		} else if _, err := units.ParseDuration(n.Value); err != nil {
			refuse(err)
		}
		return
	case t == sizeType:
		if n.Kind != yaml.ScalarNode {
			refuse(errors.New("expected a size such as 65536, 64KiB or 1MiB"))
		} else if _, err := units.ParseSize(n.Value); err != nil {
			refuse(err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			refuse(fmt.Errorf("expected a mapping with keys: %s", strings.Join(yamlKeys(t), ", ")))
			return
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			field := joinPath(path, k.Value)
			sf, ok := fields[k.Value]
			if !ok {
				best, err := unknownKey(k.Value, t)
				if best != "" {
					meant[joinPath(path, best)] = true
				}
				report(k.Line, field, err)
				continue
			}
			if first, dup := seen[k.Value]; dup {
				report(k.Line, field, duplicateKey(first))
				continue
			}
			seen[k.Value] = k.Line
			check(v, sf.Type, field, lines, meant, report)
			kept = append(kept, k, v)
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			refuse(errors.New("expected a list"))
			return
		}
		for i, c := range n.Content {
			check(c, t.Elem(), path+"["+strconv.Itoa(i)+"]", lines, meant, report)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			refuse(fmt.Errorf("expected a single %s value", kindName(t)))
			return
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			refuse(fmt.Errorf("%q is not a %s", n.Value, kindName(t)))
		}
	}
}

// unknownKey names the allowed keys, and the one meant when the key is a
// near miss ("backnd", "trusted_ca").
func unknownKey(key string, t reflect.Type) (string, error) {
	allowed := yamlKeys(t)
	best, bestD := "", 3
	for _, a := range allowed {
		if d := editDistance(strings.ToLower(key), a); d < bestD {
			best, bestD = a, d
		}
	}
	if best != "" {
		return best, fmt.Errorf("unknown key (did you mean %s? allowed: %s)", best, strings.Join(allowed, ", "))
	}
	return "", fmt.Errorf("unknown key (allowed: %s)", strings.Join(allowed, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "whole number"
	}
	return t.Kind().String()
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = sf
		}
	}
	return m
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for k := range yamlFields(t) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// yamlErrorLine extracts "line N: msg" from a yaml.v3 error.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, tail, ok := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); ok && err == nil {
			return n, tail
		}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return yamlErrorLine(errors.New(te.Errors[0]))
	}
	return 0, msg
}

// UnmarshalYAML decodes a duration such as "90d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := units.ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML decodes a size such as "64KiB".
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := units.ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

// Files lists every local file the configuration reads, resolved: the
// file itself, certificates, keys, passphrase files, CAs, CRL files and
// issuer files of allow rules. A hot reload watches these.
func (f *File) Files() []string {
	c := &f.Config
	out := []string{f.Path}
	add := func(p string) {
		if p != "" && !isPKCS11(p) { // a token key is no file to watch
			out = append(out, f.Resolve(p))
		}
	}
	for _, ck := range c.ServerTLS.Certificates {
		add(ck.Cert)
		add(ck.Key)
		add(ck.KeyPassphraseFile)
	}
	for _, p := range c.ClientAuth.TrustedCAs {
		add(p)
	}
	for _, src := range c.ClientAuth.Revocation.CRL {
		if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
			add(src)
		}
	}
	add(c.Admin.ClientCA)
	for _, r := range c.Routes {
		for _, a := range r.Allow {
			add(a.Issuer)
		}
		if u := r.UpstreamTLS; u != nil {
			add(u.CA)
			add(u.Cert)
			add(u.Key)
		}
		if r.OpenAPI != nil {
			add(r.OpenAPI.Spec)
		}
	}
	return out
}

// duplicateKey is a key written twice; the value is the first one's line.
type duplicateKey int

func (d duplicateKey) Error() string {
	return fmt.Sprintf("written twice (first at line %d; keep one)", int(d))
}
