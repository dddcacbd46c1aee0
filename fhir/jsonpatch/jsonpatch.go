// Package jsonpatch implements JSON Patch (RFC 6902) with JSON Pointers
// (RFC 6901), as used by the FHIR R4 PATCH interaction.
//
// The implementation is careful to keep the document as it was where the
// patch does not touch it:
//
//   - Numbers keep their exact text. They are never converted to float64, so
//     0.10 stays 0.10 and 1.50000000000000000001 is not rounded. Values
//     inserted by the patch keep the text they had in the patch.
//   - Object members keep the document's order. A replaced member stays where
//     it was; an added member goes at the end of its object.
//   - The result is compact JSON (no insignificant whitespace). Strings are
//     re-encoded with the minimal escaping JSON requires, so an input escape
//     such as "\u0041" comes out as "A".
//
// Input rules, for both the document and the patch:
//
//   - The input must be a single valid UTF-8 JSON value, optionally surrounded
//     by whitespace; anything after the value is an error.
//   - Nesting deeper than [MaxDepth] arrays/objects is an error. The patched
//     result is held to the same limit.
//   - Duplicate member names in one object are accepted: the last occurrence's
//     value wins and the member keeps the position of the first occurrence.
//     This also applies to operation objects in the patch, so, unlike the
//     example in RFC 6902 appendix A.13, an operation with two "op" members
//     is not rejected: the last "op" is used.
//
// Semantics follow RFC 6902: operations are applied in order, "test"
// compares values semantically (object member order is ignored, numbers are
// compared by exact decimal value so 1.0 equals 1 and 1.50 equals 1.5), and
// unknown members of an operation object are ignored. Application is
// all-or-nothing: on any error Apply returns no document.
//
// Removing the whole document (a "remove" or a "move" from path "") is an
// error, since it would leave no document.
//
// To bound the work a small patch can cause, the values duplicated by "copy"
// operations may add up to at most 4*(len(doc)+len(patch)) + 1 MiB of JSON
// text; beyond that the patch fails.
//
// Errors never contain values from the document or the patch: only a fixed
// reason, the index of the failing operation and that operation's "path".
package jsonpatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth is the maximum nesting depth of arrays and objects accepted in
// the document, in the patch (the patch's own array and operation objects
// count), and produced in the result.
const MaxDepth = 100

// Error is returned for any problem with the patch or its application.
type Error struct {
	// Op is the index of the failing operation in the patch, or -1 if the
	// problem is not with a single operation (the patch or the document is
	// not valid JSON, the patch is not an array, ...).
	Op int
	// Path is the "path" member of the failing operation as written in the
	// patch, or "" if unknown or not applicable.
	Path string
	// Reason is a short fixed description of the problem. It never contains
	// values from the document or the patch.
	Reason string
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Op < 0 {
		return "jsonpatch: " + e.Reason
	}
	return fmt.Sprintf("jsonpatch: operation %d (path %q): %s", e.Op, e.Path, e.Reason)
}

// Reasons used in [Error.Reason].
const (
	ReasonDocInvalidJSON   = "document is not valid JSON"
	ReasonDocTooDeep       = "document nesting depth exceeds 100"
	ReasonDocTrailingData  = "document has data after the JSON value"
	ReasonPatchInvalidJSON = "patch is not valid JSON"
	ReasonPatchTooDeep     = "patch nesting depth exceeds 100"
	ReasonPatchTrailing    = "patch has data after the JSON value"
	ReasonPatchNotArray    = "patch is not a JSON array"
	ReasonOpNotObject      = "operation is not a JSON object"
	ReasonOpMissing        = `operation has no string "op" member`
	ReasonOpUnknown        = "unknown operation"
	ReasonPathMissing      = `operation has no string "path" member`
	ReasonPathInvalid      = `"path" is not a valid JSON pointer`
	ReasonFromMissing      = `operation has no string "from" member`
	ReasonFromInvalid      = `"from" is not a valid JSON pointer`
	ReasonValueMissing     = `operation has no "value" member`
	ReasonMoveIntoChild    = `"from" is a proper prefix of "path" (move into own child)`
	ReasonNotFound         = "target location does not exist"
	ReasonParentNotFound   = "parent of target location does not exist"
	ReasonNotContainer     = "parent of target location is not an object or array"
	ReasonBadIndex         = "invalid array index"
	ReasonIndexRange       = "array index out of range"
	ReasonRemoveRoot       = "cannot remove the whole document"
	ReasonTestFailed       = "test failed: value does not match"
	ReasonCopyTooLarge     = "copy operations duplicate too much data"
	ReasonResultTooDeep    = "result nesting depth exceeds 100"
	// ReasonFromPrefix prefixes reasons about the "from" location of a move
	// or copy, e.g. "from: target location does not exist".
	ReasonFromPrefix = "from: "
)

// Apply applies patch (a JSON array of operations) to doc (a JSON document)
// and returns the patched document, compact. Any error is an *Error.
func Apply(doc, patch []byte) ([]byte, error) {
	ops, perr := parsePatch(patch)
	if perr != nil {
		return nil, perr
	}
	root, r := decode(doc)
	if r != errNone {
		reason := ReasonDocInvalidJSON
		switch r {
		case errDepth:
			reason = ReasonDocTooDeep
		case errTrailing:
			reason = ReasonDocTrailingData
		}
		return nil, &Error{Op: -1, Reason: reason}
	}

	a := &applier{
		root:      root,
		copyLimit: 4*(int64(len(doc))+int64(len(patch))) + 1<<20,
	}
	for i := range ops {
		if reason := a.apply(&ops[i]); reason != "" {
			return nil, &Error{Op: i, Path: ops[i].pathStr, Reason: reason}
		}
	}

	var buf bytes.Buffer
	buf.Grow(len(doc))
	if !encode(&buf, a.root, 0) {
		return nil, &Error{Op: -1, Reason: ReasonResultTooDeep}
	}
	return buf.Bytes(), nil
}

// ---------------------------------------------------------------------------
// Value representation
//
// A decoded JSON value is one of:
//
//	nil          null
//	bool         true / false
//	json.Number  a number, with its original text
//	string       a string
//	*array       an array
//	*object      an object, with member order preserved

type array struct {
	elems []any
}

type member struct {
	key string
	val any
}

// object is an ordered JSON object. Keys are unique.
type object struct {
	members []member
	// idx maps keys to positions in members. It is built lazily for large
	// objects and dropped (set to nil) when positions change.
	idx map[string]int
}

const objectIndexThreshold = 16

// find returns the position of key, or -1.
func (o *object) find(key string) int {
	if len(o.members) < objectIndexThreshold {
		for i := range o.members {
			if o.members[i].key == key {
				return i
			}
		}
		return -1
	}
	if o.idx == nil {
		o.idx = make(map[string]int, len(o.members))
		for i := range o.members {
			o.idx[o.members[i].key] = i
		}
	}
	if i, ok := o.idx[key]; ok {
		return i
	}
	return -1
}

// get returns the value of key and whether it is present.
func (o *object) get(key string) (any, bool) {
	if i := o.find(key); i >= 0 {
		return o.members[i].val, true
	}
	return nil, false
}

// set replaces the value of key in place, or appends a new member.
func (o *object) set(key string, v any) {
	if i := o.find(key); i >= 0 {
		o.members[i].val = v
		return
	}
	o.members = append(o.members, member{key: key, val: v})
	if o.idx != nil {
		o.idx[key] = len(o.members) - 1
	}
}

// removeAt deletes the member at position i.
func (o *object) removeAt(i int) {
	o.members = append(o.members[:i], o.members[i+1:]...)
	o.idx = nil
}

// ---------------------------------------------------------------------------
// Decoding

type decodeErr int

const (
	errNone decodeErr = iota
	errSyntax
	errDepth
	errTrailing
)

// decode parses data as a single JSON value, preserving number text and
// object member order.
func decode(data []byte) (any, decodeErr) {
	if !utf8.Valid(data) {
		return nil, errSyntax
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, errSyntax
	}
	v, r := decodeValue(dec, tok, 0)
	if r != errNone {
		return nil, r
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	// Belt and braces: the token stream has been checked as it was read,
	// but let encoding/json's validator have the last word.
	if !json.Valid(data) {
		return nil, errSyntax
	}
	return v, errNone
}

// decodeValue builds the value starting with tok. depth is the number of
// arrays/objects enclosing it.
func decodeValue(dec *json.Decoder, tok json.Token, depth int) (any, decodeErr) {
	switch t := tok.(type) {
	case nil, bool, json.Number, string:
		return t, errNone
	case json.Delim:
		if depth+1 > MaxDepth {
			return nil, errDepth
		}
		switch t {
		case '{':
			o := &object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, errSyntax
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errSyntax
				}
				vt, err := dec.Token()
				if err != nil {
					return nil, errSyntax
				}
				v, r := decodeValue(dec, vt, depth+1)
				if r != errNone {
					return nil, r
				}
				o.set(key, v) // duplicate keys: last value wins
			}
			if end, err := dec.Token(); err != nil || end != json.Delim('}') {
				return nil, errSyntax
			}
			return o, errNone
		case '[':
			a := &array{elems: []any{}}
			for dec.More() {
				vt, err := dec.Token()
				if err != nil {
					return nil, errSyntax
				}
				v, r := decodeValue(dec, vt, depth+1)
				if r != errNone {
					return nil, r
				}
				a.elems = append(a.elems, v)
			}
			if end, err := dec.Token(); err != nil || end != json.Delim(']') {
				return nil, errSyntax
			}
			return a, errNone
		}
	}
	return nil, errSyntax
}

// ---------------------------------------------------------------------------
// Encoding

// encode writes v as compact JSON. It returns false if the nesting depth
// exceeds MaxDepth.
func encode(buf *bytes.Buffer, v any, depth int) bool {
	switch t := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if t {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case json.Number:
		buf.WriteString(string(t))
	case string:
		encodeString(buf, t)
	case *array:
		if depth+1 > MaxDepth {
			return false
		}
		buf.WriteByte('[')
		for i, e := range t.elems {
			if i > 0 {
				buf.WriteByte(',')
			}
			if !encode(buf, e, depth+1) {
				return false
			}
		}
		buf.WriteByte(']')
	case *object:
		if depth+1 > MaxDepth {
			return false
		}
		buf.WriteByte('{')
		for i, m := range t.members {
			if i > 0 {
				buf.WriteByte(',')
			}
			encodeString(buf, m.key)
			buf.WriteByte(':')
			if !encode(buf, m.val, depth+1) {
				return false
			}
		}
		buf.WriteByte('}')
	default:
		panic(fmt.Sprintf("jsonpatch: unexpected value type %T", v))
	}
	return true
}

const hexDigits = "0123456789abcdef"

// encodeString writes s as a JSON string, escaping only what JSON requires
// (quote, backslash and control characters). s is valid UTF-8.
func encodeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf.WriteString(s[start:i])
		switch c {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\b':
			buf.WriteString(`\b`)
		case '\f':
			buf.WriteString(`\f`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[c>>4])
			buf.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}

// ---------------------------------------------------------------------------
// Equality (for "test")

// equal reports whether a and b are the same JSON value: objects compare
// regardless of member order, numbers by exact decimal value.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numbersEqual(x, y)
	case *array:
		y, ok := b.(*array)
		if !ok || len(x.elems) != len(y.elems) {
			return false
		}
		for i := range x.elems {
			if !equal(x.elems[i], y.elems[i]) {
				return false
			}
		}
		return true
	case *object:
		y, ok := b.(*object)
		if !ok || len(x.members) != len(y.members) {
			return false
		}
		// Keys are unique in both, so equal sizes plus every key of x
		// being in y means the key sets are equal.
		for _, m := range x.members {
			v, ok := y.get(m.key)
			if !ok || !equal(m.val, v) {
				return false
			}
		}
		return true
	}
	return false
}

// decimal is a canonical exact decimal: value = (-1)^neg * digits * 10^exp,
// where digits has no leading or trailing zeros. Zero has digits == "".
type decimal struct {
	neg    bool
	digits string
	exp    *big.Int
}

// parseDecimal parses JSON number text exactly. The exponent is kept as a
// big.Int so that no input can overflow it, and nothing is ever raised to a
// power, so huge exponents cost nothing.
func parseDecimal(s string) (decimal, bool) {
	d := decimal{exp: new(big.Int)}
	if strings.HasPrefix(s, "-") {
		d.neg = true
		s = s[1:]
	}
	mant, expStr := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expStr = s[:i], s[i+1:]
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	if intPart == "" || !allDigits(intPart) || !allDigits(frac) {
		return decimal{}, false
	}
	if expStr != "" {
		if _, ok := d.exp.SetString(expStr, 10); !ok {
			return decimal{}, false
		}
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	d.exp.Sub(d.exp, big.NewInt(int64(len(frac))))
	trimmed := strings.TrimRight(digits, "0")
	d.exp.Add(d.exp, big.NewInt(int64(len(digits)-len(trimmed))))
	d.digits = trimmed
	if d.digits == "" { // zero, including -0 and 0e5
		d.neg = false
		d.exp.SetInt64(0)
	}
	return d, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func numbersEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, okx := parseDecimal(string(a))
	y, oky := parseDecimal(string(b))
	if !okx || !oky {
		return false
	}
	return x.neg == y.neg && x.digits == y.digits && x.exp.Cmp(y.exp) == 0
}

// ---------------------------------------------------------------------------
// JSON Pointer

// parsePointer splits an RFC 6901 pointer into unescaped reference tokens.
// "" is the whole document and yields no tokens.
func parsePointer(p string) ([]string, bool) {
	if p == "" {
		return []string{}, true
	}
	if p[0] != '/' {
		return nil, false
	}
	parts := strings.Split(p[1:], "/")
	for i, part := range parts {
		if !strings.Contains(part, "~") {
			continue
		}
		var sb strings.Builder
		for j := 0; j < len(part); j++ {
			c := part[j]
			if c != '~' {
				sb.WriteByte(c)
				continue
			}
			if j+1 >= len(part) {
				return nil, false
			}
			j++
			switch part[j] {
			case '0':
				sb.WriteByte('~')
			case '1':
				sb.WriteByte('/')
			default:
				return nil, false
			}
		}
		parts[i] = sb.String()
	}
	return parts, true
}

// isProperPrefix reports whether pointer tokens a are a proper prefix of b.
func isProperPrefix(a, b []string) bool {
	if len(a) >= len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// equalTokens reports whether pointer tokens a and b are identical.
func equalTokens(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parseIndex parses an array index token for an array of length n. With
// allowEnd, "-" and n itself are accepted and mean "append".
func parseIndex(tok string, n int, allowEnd bool) (int, string) {
	if tok == "-" {
		if allowEnd {
			return n, ""
		}
		return 0, ReasonIndexRange
	}
	if tok == "" || !allDigits(tok) || (len(tok) > 1 && tok[0] == '0') {
		return 0, ReasonBadIndex
	}
	i, err := strconv.Atoi(tok)
	if err != nil { // only overflow is possible here
		return 0, ReasonIndexRange
	}
	if i > n || (i == n && !allowEnd) {
		return 0, ReasonIndexRange
	}
	return i, ""
}

// ---------------------------------------------------------------------------
// Patch parsing

type operation struct {
	op      string
	pathStr string
	path    []string
	from    []string
	value   any
}

func parsePatch(data []byte) ([]operation, *Error) {
	v, r := decode(data)
	switch r {
	case errNone:
	case errDepth:
		return nil, &Error{Op: -1, Reason: ReasonPatchTooDeep}
	case errTrailing:
		return nil, &Error{Op: -1, Reason: ReasonPatchTrailing}
	default:
		return nil, &Error{Op: -1, Reason: ReasonPatchInvalidJSON}
	}
	arr, ok := v.(*array)
	if !ok {
		return nil, &Error{Op: -1, Reason: ReasonPatchNotArray}
	}
	ops := make([]operation, len(arr.elems))
	for i, e := range arr.elems {
		fail := func(path, reason string) *Error {
			return &Error{Op: i, Path: path, Reason: reason}
		}
		o, ok := e.(*object)
		if !ok {
			return nil, fail("", ReasonOpNotObject)
		}
		pv, _ := o.get("path")
		pathStr, ok := pv.(string)
		if !ok {
			return nil, fail("", ReasonPathMissing)
		}
		opv, _ := o.get("op")
		opName, ok := opv.(string)
		if !ok {
			return nil, fail(pathStr, ReasonOpMissing)
		}
		op := operation{op: opName, pathStr: pathStr}
		switch opName {
		case "add", "remove", "replace", "move", "copy", "test":
		default:
			return nil, fail(pathStr, ReasonOpUnknown)
		}
		if op.path, ok = parsePointer(pathStr); !ok {
			return nil, fail(pathStr, ReasonPathInvalid)
		}
		switch opName {
		case "add", "replace", "test":
			if op.value, ok = o.get("value"); !ok {
				return nil, fail(pathStr, ReasonValueMissing)
			}
		case "move", "copy":
			fv, _ := o.get("from")
			fromStr, ok := fv.(string)
			if !ok {
				return nil, fail(pathStr, ReasonFromMissing)
			}
			if op.from, ok = parsePointer(fromStr); !ok {
				return nil, fail(pathStr, ReasonFromInvalid)
			}
			if opName == "move" && isProperPrefix(op.from, op.path) {
				return nil, fail(pathStr, ReasonMoveIntoChild)
			}
		}
		ops[i] = op
	}
	return ops, nil
}

// ---------------------------------------------------------------------------
// Application

type applier struct {
	root      any
	copied    int64 // approximate JSON size of values duplicated by copy
	copyLimit int64
}

func (a *applier) apply(op *operation) string {
	switch op.op {
	case "add":
		return a.add(op.path, op.value)
	case "remove":
		_, r := a.remove(op.path)
		return r
	case "replace":
		return a.replace(op.path, op.value)
	case "move":
		if equalTokens(op.from, op.path) {
			// Moving a value onto itself changes nothing, but the
			// location must exist.
			if _, r := a.get(op.from); r != "" {
				return ReasonFromPrefix + r
			}
			return ""
		}
		v, r := a.remove(op.from)
		if r != "" {
			return ReasonFromPrefix + r
		}
		return a.add(op.path, v)
	case "copy":
		v, r := a.get(op.from)
		if r != "" {
			return ReasonFromPrefix + r
		}
		size, ok := jsonSize(v, a.copyLimit-a.copied)
		if !ok {
			return ReasonCopyTooLarge
		}
		a.copied += size
		return a.add(op.path, deepCopy(v))
	case "test":
		v, r := a.get(op.path)
		if r != "" {
			return r
		}
		if !equal(v, op.value) {
			return ReasonTestFailed
		}
		return ""
	}
	return ReasonOpUnknown
}

// get returns the value at the location given by tokens.
func (a *applier) get(tokens []string) (any, string) {
	cur := a.root
	for _, tok := range tokens {
		switch c := cur.(type) {
		case *object:
			v, ok := c.get(tok)
			if !ok {
				return nil, ReasonNotFound
			}
			cur = v
		case *array:
			i, r := parseIndex(tok, len(c.elems), false)
			if r != "" {
				return nil, r
			}
			cur = c.elems[i]
		default:
			return nil, ReasonNotFound
		}
	}
	return cur, ""
}

// parent returns the container holding the location given by tokens
// (len(tokens) > 0).
func (a *applier) parent(tokens []string) (any, string) {
	p, r := a.get(tokens[:len(tokens)-1])
	if r == ReasonNotFound {
		return nil, ReasonParentNotFound
	}
	return p, r
}

func (a *applier) add(tokens []string, v any) string {
	if len(tokens) == 0 {
		a.root = v
		return ""
	}
	p, r := a.parent(tokens)
	if r != "" {
		return r
	}
	last := tokens[len(tokens)-1]
	switch c := p.(type) {
	case *object:
		c.set(last, v)
	case *array:
		i, r := parseIndex(last, len(c.elems), true)
		if r != "" {
			return r
		}
		c.elems = append(c.elems, nil)
		copy(c.elems[i+1:], c.elems[i:])
		c.elems[i] = v
	default:
		return ReasonNotContainer
	}
	return ""
}

func (a *applier) remove(tokens []string) (any, string) {
	if len(tokens) == 0 {
		return nil, ReasonRemoveRoot
	}
	p, r := a.parent(tokens)
	if r != "" {
		return nil, r
	}
	last := tokens[len(tokens)-1]
	switch c := p.(type) {
	case *object:
		i := c.find(last)
		if i < 0 {
			return nil, ReasonNotFound
		}
		v := c.members[i].val
		c.removeAt(i)
		return v, ""
	case *array:
		i, r := parseIndex(last, len(c.elems), false)
		if r != "" {
			return nil, r
		}
		v := c.elems[i]
		c.elems = append(c.elems[:i], c.elems[i+1:]...)
		return v, ""
	default:
		return nil, ReasonNotContainer
	}
}

func (a *applier) replace(tokens []string, v any) string {
	if len(tokens) == 0 {
		a.root = v
		return ""
	}
	p, r := a.parent(tokens)
	if r != "" {
		return r
	}
	last := tokens[len(tokens)-1]
	switch c := p.(type) {
	case *object:
		i := c.find(last)
		if i < 0 {
			return ReasonNotFound
		}
		c.members[i].val = v
	case *array:
		i, r := parseIndex(last, len(c.elems), false)
		if r != "" {
			return r
		}
		c.elems[i] = v
	default:
		return ReasonNotContainer
	}
	return ""
}

// deepCopy returns a copy of v sharing no mutable state with it.
func deepCopy(v any) any {
	switch t := v.(type) {
	case *array:
		c := &array{elems: make([]any, len(t.elems))}
		for i, e := range t.elems {
			c.elems[i] = deepCopy(e)
		}
		return c
	case *object:
		c := &object{members: make([]member, len(t.members))}
		for i, m := range t.members {
			c.members[i] = member{key: m.key, val: deepCopy(m.val)}
		}
		return c
	default:
		return v // immutable
	}
}

// jsonSize returns the approximate compact JSON size of v. It stops early,
// returning false, once the size exceeds limit.
func jsonSize(v any, limit int64) (int64, bool) {
	var n int64
	var walk func(v any) bool
	walk = func(v any) bool {
		switch t := v.(type) {
		case nil:
			n += 4
		case bool:
			n += 5
		case json.Number:
			n += int64(len(t))
		case string:
			n += int64(len(t)) + 2
		case *array:
			n += 2 + int64(len(t.elems))
			for _, e := range t.elems {
				if !walk(e) {
					return false
				}
			}
		case *object:
			n += 2
			for _, m := range t.members {
				n += int64(len(m.key)) + 4
				if !walk(m.val) {
					return false
				}
			}
		}
		return n <= limit
	}
	if !walk(v) {
		return n, false
	}
	return n, true
}
