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

// maxConfigSize bounds what Parse accepts, so a wrong file (a log, a
// binary) is refused instead of exhausting memory.
const maxConfigSize = 4 << 20

// Parse is Load for data already read from path.
func Parse(path string, data []byte) (*File, error) {
	f := &File{Path: path, lines: map[string]int{}}
	fail := func(line int, field string, err error) error {
		return Errors{{File: path, Line: line, Field: field, Err: err}}
	}
	if len(data) > maxConfigSize {
		return nil, fail(0, "", fmt.Errorf("file is larger than %s; is it the right file?", units.FormatSize(maxConfigSize)))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlErrorLine(err)
		return nil, fail(line, "", fmt.Errorf("invalid YAML: %s", msg))
	}
	if len(doc.Content) == 0 {
		return nil, fail(0, "", errors.New("file is empty (see the README for an example configuration)"))
	}
	root := doc.Content[0]
	var errs Errors
	check(root, reflect.TypeOf(Config{}), "", f.lines, func(line int, field string, err error) {
		errs = append(errs, &FieldError{File: path, Line: line, Field: field, Err: err})
	})
	if len(errs) > 0 {
		return nil, errs
	}
	if err := root.Decode(&f.Config); err != nil {
		// check has verified every key and scalar; what is left is
		// structural, such as a key written twice.
		line, msg := yamlErrorLine(err)
		return nil, fail(line, "", fmt.Errorf("invalid YAML: %s", msg))
	}
	f.Config.ApplyDefaults()
	if verrs := f.Config.Validate(); len(verrs) > 0 {
		for _, ve := range verrs {
			errs = append(errs, &FieldError{File: path, Line: f.Line(ve.Field), Field: ve.Field, Err: ve.Err})
		}
		// In file order, as a reader fixing them goes.
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return f, nil
}

var (
	durationType = reflect.TypeOf(Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
)

// check walks the YAML tree alongside the Go type, recording the line of
// every field and reporting unknown keys (naming the allowed ones), wrong
// kinds and unparsable scalars. Doing this before Decode gives every error
// a field path, which yaml's own errors lack.
func check(n *yaml.Node, t reflect.Type, path string, lines map[string]int, report func(int, string, error)) {
	if n.Kind == yaml.AliasNode {
		report(n.Line, path, errors.New("YAML aliases are not supported; write the value out"))
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
			report(n.Line, path, errors.New("expected a duration such as 30s, 15m, 90d or 2y"))
		} else if _, err := units.ParseDuration(n.Value); err != nil {
			report(n.Line, path, err)
		}
		return
	case t == sizeType:
		if n.Kind != yaml.ScalarNode {
			report(n.Line, path, errors.New("expected a size such as 65536, 64KiB or 1MiB"))
		} else if _, err := units.ParseSize(n.Value); err != nil {
			report(n.Line, path, err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			report(n.Line, path, fmt.Errorf("expected a mapping with keys: %s", strings.Join(yamlKeys(t), ", ")))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sf, ok := fields[k.Value]
			if !ok {
				report(k.Line, joinPath(path, k.Value), fmt.Errorf("unknown key (allowed: %s)", strings.Join(yamlKeys(t), ", ")))
				continue
			}
			check(v, sf.Type, joinPath(path, k.Value), lines, report)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			report(n.Line, path, errors.New("expected a list"))
			return
		}
		for i, c := range n.Content {
			check(c, t.Elem(), path+"["+strconv.Itoa(i)+"]", lines, report)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			report(n.Line, path, fmt.Errorf("expected a single %s value", kindName(t)))
			return
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			report(n.Line, path, fmt.Errorf("%q is not a %s", n.Value, kindName(t)))
		}
	}
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
	for _, r := range c.Routes {
		for _, a := range r.Allow {
			add(a.Issuer)
		}
		if u := r.UpstreamTLS; u != nil {
			add(u.CA)
			add(u.Cert)
			add(u.Key)
		}
	}
	return out
}
