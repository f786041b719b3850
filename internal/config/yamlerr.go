package config

import (
	"bytes"
	"fmt"
	"strings"
)

// syntaxProblem turns a YAML syntax error into gatehouse's words, located at
// the line that causes it. The YAML parser reports where it gave up, which
// is often lines before or after the mistake (an under-indented key is
// reported at the start of its list) and in the parser's own terms. The
// text is scanned for the usual culprits first; the parser's message is
// the fallback.
func syntaxProblem(data []byte, yamlLine int, yamlMsg string) (int, string) {
	lines := strings.Split(string(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))), "\n")
	if n, msg := findTab(lines); n > 0 {
		return n, msg
	}
	if n, msg := findIndentation(lines); n > 0 {
		return n, msg
	}
	if strings.Contains(yamlMsg, "end of stream") || strings.Contains(yamlMsg, "quoted scalar") {
		if n := findOpenQuote(lines); n > 0 {
			return n, "a quoted value is not closed (add the missing closing quote)"
		}
	}
	if strings.Contains(yamlMsg, "mapping values are not allowed") {
		if n := findColonInValue(lines); n > 0 {
			return n, `a value contains ": " (quote the value, e.g. "a: b", or put the key on its own line)`
		}
	}
	switch {
	case strings.Contains(yamlMsg, "could not find expected ':'"):
		return yamlLine, `a line in a mapping has no "key: value" form (add the ':' or fix the indentation)`
	case strings.Contains(yamlMsg, "did not find expected key"), strings.Contains(yamlMsg, "did not find expected '-'"):
		return yamlLine, "this line does not fit the structure above it (check its indentation: keys of one mapping start in the same column)"
	case strings.Contains(yamlMsg, "did not find expected ',' or ']'"), strings.Contains(yamlMsg, "did not find expected ',' or '}'"):
		return yamlLine, "a [list] or {mapping} is not closed, or its items are not separated by ','"
	}
	return yamlLine, "invalid YAML: " + yamlMsg
}

// findTab returns the first line indented with a tab.
func findTab(lines []string) (int, string) {
	for i, l := range lines {
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") && strings.TrimSpace(l) != "" {
			return i + 1, "indented with a tab (YAML indents with spaces only)"
		}
	}
	return 0, ""
}

// findIndentation finds the first line whose indentation matches no open
// block: deeper than the line above when that line already has a value, or
// between two levels. Lines inside block scalars (| and >) and inside
// flow collections spanning lines are skipped.
func findIndentation(lines []string) (int, string) {
	var stack []int    // columns of the open blocks, innermost last
	var keys []string  // the first key of each block, for the message
	open := true       // the previous line ends with "key:" or "-": a deeper block may start
	scalarIndent := -1 // inside a block scalar: lines indented more than this belong to it
	depth := 0         // open [ and { of a flow collection spanning lines
	for n, raw := range lines {
		text := stripComment(raw)
		trimmed := strings.TrimLeft(text, " ")
		if strings.TrimSpace(trimmed) == "" || strings.HasPrefix(trimmed, "---") || strings.HasPrefix(trimmed, "%") {
			continue
		}
		col := len(text) - len(trimmed)
		if scalarIndent >= 0 {
			if col > scalarIndent {
				continue
			}
			scalarIndent = -1
		}
		if depth > 0 {
			depth += flowDepth(trimmed)
			continue
		}
		if open && (len(stack) == 0 || col > stack[len(stack)-1]) {
			stack = append(stack, col)
			keys = append(keys, keyOf(trimmed))
		} else {
			var popped int = -1
			var poppedKey string
			for len(stack) > 0 && stack[len(stack)-1] > col {
				popped, poppedKey = stack[len(stack)-1], keys[len(keys)-1]
				stack, keys = stack[:len(stack)-1], keys[:len(keys)-1]
			}
			if len(stack) == 0 || stack[len(stack)-1] != col {
				what := keyOf(trimmed)
				if popped < 0 && len(keys) > 0 {
					return n + 1, fmt.Sprintf("%s is indented %s, deeper than the line above, which already has a value (indent it like %s, or end the line above with ':' to start a mapping)",
						what, spaces(col), keys[len(keys)-1])
				}
				outer, outerKey := 0, `the top level`
				if len(stack) > 0 {
					outer, outerKey = stack[len(stack)-1], keys[len(keys)-1]
				}
				return n + 1, fmt.Sprintf("%s is indented %s, between %s (%d) and %s (%d) (align it with the key it belongs to)",
					what, spaces(col), outerKey, outer, poppedKey, popped)
			}
		}
		open = false
		// A list item: its content opens a block in its own column.
		for strings.HasPrefix(trimmed, "- ") || trimmed == "-" {
			if trimmed == "-" {
				open = true
				break
			}
			rest := strings.TrimLeft(trimmed[1:], " ")
			col += len(trimmed) - len(rest)
			trimmed = rest
			stack = append(stack, col)
			keys = append(keys, keyOf(trimmed))
		}
		if open {
			continue
		}
		key, value, isKey := splitKey(trimmed)
		value = strings.TrimSpace(value)
		switch {
		case !isKey:
			depth = flowDepth(trimmed)
		case value == "":
			open = true
		case strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">"):
			scalarIndent = col
		default:
			depth = flowDepth(value)
		}
		_ = key
	}
	return 0, ""
}

// keyOf names a line for a message: its key, or its text.
func keyOf(trimmed string) string {
	if k, _, ok := splitKey(trimmed); ok {
		return `"` + k + `:"`
	}
	if len(trimmed) > 30 {
		trimmed = trimmed[:30] + "..."
	}
	return fmt.Sprintf("%q", trimmed)
}

// splitKey splits "key: value" (or "key:") outside quotes.
func splitKey(s string) (key, value string, ok bool) {
	if s == "" {
		return "", "", false
	}
	if strings.ContainsAny(s[:1], `"'[{`) {
		if q := s[:1]; q == `"` || q == `'` {
			if end := strings.Index(s[1:], q); end >= 0 {
				rest := s[end+2:]
				if strings.HasPrefix(rest, ":") && (len(rest) == 1 || rest[1] == ' ') {
					return s[1 : end+1], rest[1:], true
				}
			}
		}
		return "", "", false
	}
	i := strings.Index(s, ": ")
	if i < 0 {
		if strings.HasSuffix(s, ":") {
			return s[:len(s)-1], "", true
		}
		return "", "", false
	}
	return s[:i], s[i+2:], true
}

// eachUnquoted calls f with each byte of s that is outside quotes, until
// f returns false. A quote opens at the start of s or after a space, '[',
// '{' or ',', and closes at the next same quote.
func eachUnquoted(s string, f func(i int, c byte) bool) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case (c == '"' || c == '\'') && (i == 0 || strings.IndexByte(" [{,", s[i-1]) >= 0):
			quote = c
		default:
			if !f(i, c) {
				return
			}
		}
	}
}

// flowDepth counts the [ and { a line leaves open, outside quotes.
func flowDepth(s string) int {
	d := 0
	eachUnquoted(s, func(_ int, c byte) bool {
		switch c {
		case '[', '{':
			d++
		case ']', '}':
			d--
		}
		return true
	})
	return d
}

// stripComment removes a " #" comment outside quotes.
func stripComment(s string) string {
	out := s
	eachUnquoted(s, func(i int, c byte) bool {
		if c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			out = s[:i]
			return false
		}
		return true
	})
	return out
}

// findOpenQuote returns the first line whose value opens a quote it does
// not close.
func findOpenQuote(lines []string) int {
	for i, l := range lines {
		_, v, ok := splitKey(strings.TrimLeft(strings.TrimLeft(l, " "), "- "))
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			continue
		}
		if q := v[:1]; (q == `"` || q == `'`) && !strings.Contains(v[1:], q) {
			return i + 1
		}
	}
	return 0
}

// findColonInValue returns the first line whose plain value contains ": ".
func findColonInValue(lines []string) int {
	for i, l := range lines {
		_, v, ok := splitKey(strings.TrimLeft(strings.TrimLeft(stripComment(l), " "), "- "))
		v = strings.TrimSpace(v)
		if ok && v != "" && !strings.ContainsAny(v[:1], `"'[{|>`) && (strings.Contains(v, ": ") || strings.HasSuffix(v, ":")) {
			return i + 1
		}
	}
	return 0
}

func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return fmt.Sprintf("%d spaces", n)
}
