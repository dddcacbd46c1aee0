package resource

import (
	"bytes"
	"encoding/json"
)

// RewriteReferences calls fn on the value of every `reference` member of
// a Reference anywhere in the resource (contained resources included) and
// replaces it with what fn returns. Members keep their order and other
// values their exact text. It returns the input unchanged when fn changes
// nothing.
func RewriteReferences(data []byte, fn func(ref string) (string, error)) ([]byte, error) {
	out, changed, err := rewrite(data, fn, 0)
	if err != nil || !changed {
		return data, err
	}
	return out, nil
}

func rewrite(raw json.RawMessage, fn func(string) (string, error), depth int) ([]byte, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || depth > 200 {
		return raw, false, nil
	}
	switch raw[0] {
	case '{':
		obj, err := ParseObject(raw)
		if err != nil {
			return nil, false, err
		}
		changed := false
		for i, f := range obj {
			if f.Key == "reference" {
				var ref string
				if json.Unmarshal(f.Value, &ref) == nil {
					nr, err := fn(ref)
					if err != nil {
						return nil, false, err
					}
					if nr != ref {
						obj[i].Value, _ = json.Marshal(nr)
						changed = true
					}
				}
				continue
			}
			nv, ch, err := rewrite(f.Value, fn, depth+1)
			if err != nil {
				return nil, false, err
			}
			if ch {
				obj[i].Value = nv
				changed = true
			}
		}
		if !changed {
			return raw, false, nil
		}
		return obj.Marshal(), true, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, false, err
		}
		changed := false
		for i, it := range items {
			nv, ch, err := rewrite(it, fn, depth+1)
			if err != nil {
				return nil, false, err
			}
			if ch {
				items[i] = nv
				changed = true
			}
		}
		if !changed {
			return raw, false, nil
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(it)
		}
		b.WriteByte(']')
		return b.Bytes(), true, nil
	}
	return raw, false, nil
}
