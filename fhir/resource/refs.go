package resource

import (
	"bytes"
	"encoding/json"
	"errors"
)

// RewriteReferences calls fn on the value of every `reference` member
// whose value is a string (Reference.reference, anywhere in the resource,
// contained resources included) and replaces it with what fn returns.
// Everything else keeps its exact bytes. It returns the input unchanged
// when fn changes nothing.
//
// It is a single pass over the bytes with a small JSON-aware scanner (no
// decoding): bundles rewrite every reference of every entry.
func RewriteReferences(data []byte, fn func(ref string) (string, error)) ([]byte, error) {
	return RewriteLinks(data, fn, nil)
}

// RewriteLinks is RewriteReferences that also calls onURL on the string
// value of every `url` member (Attachment.url, but also extension and
// other urls: onURL must return values it does not know unchanged), so
// that a bundle's fullUrls are resolved in uri/url elements too, as the
// transaction rules ask. A nil onURL leaves urls alone.
func RewriteLinks(data []byte, fn, onURL func(string) (string, error)) ([]byte, error) {
	var out []byte // nil until the first change
	last := 0
	i := 0
	n := len(data)
	for i < n {
		c := data[i]
		if c != '"' {
			i++
			continue
		}
		// A string: find its end.
		end, err := stringEnd(data, i)
		if err != nil {
			return nil, err
		}
		key := data[i+1 : end]
		call := fn
		if !bytes.Equal(key, []byte("reference")) {
			call = nil
			if onURL != nil && bytes.Equal(key, []byte("url")) {
				call = onURL
			}
		}
		i = end + 1
		if call == nil {
			continue
		}
		// Key position: whitespace, ':', whitespace, then a string value.
		j := skipSpace(data, i)
		if j >= n || data[j] != ':' {
			continue // "reference" was a value, not a key
		}
		j = skipSpace(data, j+1)
		if j >= n || data[j] != '"' {
			continue // an object or another value: keep scanning inside it
		}
		vend, err := stringEnd(data, j)
		if err != nil {
			return nil, err
		}
		var ref string
		if err := json.Unmarshal(data[j:vend+1], &ref); err != nil {
			return nil, err
		}
		nr, err := call(ref)
		if err != nil {
			return nil, err
		}
		if nr != ref {
			enc, _ := json.Marshal(nr)
			out = append(out, data[last:j]...)
			out = append(out, enc...)
			last = vend + 1
		}
		i = vend + 1
	}
	if out == nil {
		return data, nil
	}
	return append(out, data[last:]...), nil
}

var errUnterminated = errors.New("unterminated JSON string")

// stringEnd returns the index of the closing quote of the string that
// starts at data[start] == '"'.
func stringEnd(data []byte, start int) (int, error) {
	for k := start + 1; k < len(data); k++ {
		switch data[k] {
		case '\\':
			k++
		case '"':
			return k, nil
		}
	}
	return 0, errUnterminated
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}
