package resource

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Field is one member of a JSON object, in document order.
type Field struct {
	Key   string
	Value json.RawMessage
}

// Object is a JSON object that keeps its members' order and raw values.
type Object []Field

// ParseObject parses a JSON object, keeping member order and raw values.
// A duplicate key is an error (FHIR JSON forbids them).
func ParseObject(data []byte) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var obj Object
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("duplicate member %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		obj = append(obj, Field{Key: key, Value: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return obj, nil
}

// Get returns the raw value of key.
func (o Object) Get(key string) (json.RawMessage, bool) {
	for _, f := range o {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// GetString returns the value of key when it is a JSON string.
func (o Object) GetString(key string) (string, bool) {
	raw, ok := o.Get(key)
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Set replaces key's value in place, or appends it.
func (o Object) Set(key string, v json.RawMessage) Object {
	for i := range o {
		if o[i].Key == key {
			o[i].Value = v
			return o
		}
	}
	return append(o, Field{Key: key, Value: v})
}

// Delete removes key.
func (o Object) Delete(key string) Object {
	for i := range o {
		if o[i].Key == key {
			return append(o[:i:i], o[i+1:]...)
		}
	}
	return o
}

// Marshal writes the object compactly, members in order, values as they
// are (compacted).
func (o Object) Marshal() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Key)
		b.Write(k)
		b.WriteByte(':')
		if err := json.Compact(&b, f.Value); err != nil {
			b.Write(f.Value)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Instant formats t as a FHIR instant with microseconds.
func Instant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

// WithMeta returns the resource with resourceType first, then id, then
// meta carrying versionId and lastUpdated (other meta elements kept),
// then the other members in the client's order.
func WithMeta(obj Object, typ, id string, vid int64, lastUpdated time.Time) ([]byte, error) {
	meta := Object{}
	if raw, ok := obj.Get("meta"); ok {
		m, err := ParseObject(raw)
		if err != nil {
			return nil, fmt.Errorf("meta: %w", err)
		}
		meta = m
	}
	meta = meta.Delete("versionId").Delete("lastUpdated")
	vidRaw, _ := json.Marshal(fmt.Sprint(vid))
	luRaw, _ := json.Marshal(Instant(lastUpdated))
	meta = append(Object{{Key: "versionId", Value: vidRaw}, {Key: "lastUpdated", Value: luRaw}}, meta...)
	typRaw, _ := json.Marshal(typ)
	idRaw, _ := json.Marshal(id)
	out := Object{{Key: "resourceType", Value: typRaw}, {Key: "id", Value: idRaw}, {Key: "meta", Value: meta.Marshal()}}
	for _, f := range obj {
		switch f.Key {
		case "resourceType", "id", "meta":
			continue
		}
		out = append(out, f)
	}
	return out.Marshal(), nil
}

// ContentHash digests a resource without its server-owned meta
// (versionId, lastUpdated) and independent of member order and
// whitespace, so that an update that changes nothing is recognised.
func ContentHash(data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	if m, ok := v["meta"].(map[string]any); ok {
		delete(m, "versionId")
		delete(m, "lastUpdated")
		if len(m) == 0 {
			delete(v, "meta")
		}
	}
	canon, err := json.Marshal(v) // maps are written with sorted keys; numbers keep their text
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return base64.RawStdEncoding.EncodeToString(sum[:]), nil
}
