package search

// A FHIRPath evaluator for the subset of FHIRPath that search parameter
// expressions use, over resources decoded from JSON (map[string]any,
// []any, string, json.Number or float64, bool).
//
// Supported:
//   - paths: Patient.name.given, with implicit flattening of arrays; a type
//     name as the first step selects the resource when it is of that type
//     (Resource and DomainResource match any resource); choice elements are
//     navigated without their suffix (Observation.value finds
//     valueQuantity, valueString, ...);
//   - literals: 'strings', numbers, true, false, {};
//   - operators: . [n] | is as = != ~ !~ < <= > >= in contains and or xor
//     implies, parentheses;
//   - functions: where, select, exists, all, empty, not, first, last, tail,
//     count, hasValue, extension(url), resolve, as(T), is(T), ofType(T),
//     union, combine;
//   - variables: $this, %resource, %rootResource, %context, %ucum, %sct,
//     %loinc.
//
// Anything else (arithmetic, date literals, other functions) is refused by
// Compile.
//
// resolve() does not fetch anything: a reference to a contained resource
// ("#id") resolves to that resource, any other reference to an opaque
// stand-in that knows only its resource type, taken from the reference
// ("Patient/1", "http://x/fhir/Patient/1", ".../Patient/1/_history/2") or
// else from Reference.type. So "resolve() is Patient" works, while
// navigating into a resolved non-contained resource yields nothing.

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Expr is a compiled FHIRPath expression. It is safe for concurrent use.
type Expr struct {
	src  string
	root node
}

// Compile parses a FHIRPath expression.
func Compile(src string) (*Expr, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", src, err)
	}
	p := &parser{src: src, toks: toks}
	n, err := p.parseExpr(0)
	if err == nil && p.peek().kind != tEOF {
		err = p.errorf(p.peek(), "unexpected %s", p.peek())
	}
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", src, err)
	}
	return &Expr{src: src, root: n}, nil
}

// String returns the expression's source text.
func (e *Expr) String() string { return e.src }

// Evaluate runs the expression with resource as its context and returns the
// JSON nodes it selects. Values that are not JSON nodes (the stand-ins
// resolve() makes for references to other resources) are left out.
func (e *Expr) Evaluate(resource map[string]any) ([]any, error) {
	typ, _ := resource["resourceType"].(string)
	return e.evaluate(item{v: resource, typ: typ}, nil)
}

// evalItems runs the expression on root (the resource). When focus is not
// nil, the expression is evaluated relative to it (%context and $this are
// the focus), as a composite parameter's component expressions are.
func (e *Expr) evalItems(root item, focus *item) ([]item, error) {
	ctx := root
	if focus != nil {
		ctx = *focus
	}
	env := env{resource: []item{root}, context: []item{ctx}, this: []item{ctx}}
	res, err := e.root.eval(env, []item{ctx})
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", e.src, err)
	}
	return res, nil
}

func (e *Expr) evaluate(root item, focus *item) ([]any, error) {
	res, err := e.evalItems(root, focus)
	if err != nil {
		return nil, err
	}
	return jsonValues(res), nil
}

// jsonValues returns the JSON nodes of a collection, leaving out the
// stand-ins resolve() makes for references to other resources.
func jsonValues(items []item) []any {
	out := make([]any, 0, len(items))
	for _, it := range items {
		if _, stub := it.v.(*resolved); stub {
			continue
		}
		out = append(out, it.v)
	}
	return out
}

// ---- values ----

// item is one value of a FHIRPath collection: a JSON node, with its FHIR
// type when navigation revealed it (choice element suffix, resourceType).
type item struct {
	v   any
	typ string
}

// resolved stands for a resource a reference points to that is not at hand.
type resolved struct {
	typ string
	ref string
}

type env struct {
	resource []item // %resource, %rootResource
	context  []item // %context
	this     []item // $this
}

// ---- tokens ----

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tDelimIdent // `identifier`
	tString
	tNumber
	tOp
	tExtConst // %name
	tVar      // $this
)

type token struct {
	kind       tokKind
	text       string
	start, end int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return fmt.Sprintf("string '%s'", t.text)
	case tExtConst:
		return "%" + t.text
	default:
		return fmt.Sprintf("%q", t.text)
	}
}

var twoCharOps = []string{"!=", "!~", "<=", ">="}

func tokenize(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("unterminated comment at %d", i)
			}
			i += 2 + end + 2
		case c == '\'':
			s, n, err := scanQuoted(src[i:], '\'')
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, token{tString, s, i, i + n})
			i += n
		case c == '`':
			s, n, err := scanQuoted(src[i:], '`')
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, token{tDelimIdent, s, i, i + n})
			i += n
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			toks = append(toks, token{tNumber, src[i:j], i, j})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{tIdent, src[i:j], i, j})
			i = j
		case c == '%' || c == '$':
			kind := tExtConst
			if c == '$' {
				kind = tVar
			}
			j := i + 1
			var name string
			switch {
			case j < len(src) && (src[j] == '`' || src[j] == '\'') && c == '%':
				s, n, err := scanQuoted(src[j:], src[j])
				if err != nil {
					return nil, fmt.Errorf("at %d: %w", i, err)
				}
				name, j = s, j+n
			default:
				for j < len(src) && isIdentPart(src[j]) {
					j++
				}
				name = src[i+1 : j]
			}
			if name == "" {
				return nil, fmt.Errorf("at %d: %q without a name", i, c)
			}
			toks = append(toks, token{kind, name, i, j})
			i = j
		case c == '@':
			return nil, fmt.Errorf("at %d: date/time literals are not supported", i)
		default:
			op := ""
			for _, o := range twoCharOps {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if !strings.ContainsRune(".,()[]{}|=~<>+-*/&", rune(c)) {
					r, _ := utf8.DecodeRuneInString(src[i:])
					return nil, fmt.Errorf("at %d: unexpected character %q", i, r)
				}
				op = src[i : i+1]
			}
			toks = append(toks, token{tOp, op, i, i + len(op)})
			i += len(op)
		}
	}
	toks = append(toks, token{tEOF, "", len(src), len(src)})
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// scanQuoted reads a quoted string or identifier at the start of s, with
// FHIRPath's escapes, and returns its value and length in s.
func scanQuoted(s string, q byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\':
			i++
			if i >= len(s) {
				return "", 0, fmt.Errorf("unterminated %c", q)
			}
			switch s[i] {
			case '\'', '"', '`', '\\', '/':
				b.WriteByte(s[i])
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+4 >= len(s) {
					return "", 0, fmt.Errorf("bad \\u escape")
				}
				r, err := strconv.ParseUint(s[i+1:i+5], 16, 32)
				if err != nil {
					return "", 0, fmt.Errorf("bad \\u escape")
				}
				b.WriteRune(rune(r))
				i += 4
			default:
				return "", 0, fmt.Errorf("bad escape \\%c", s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated %c", q)
}

// ---- parser ----

type parser struct {
	src  string
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}
func (p *parser) prevEnd() int { return p.toks[max(p.pos-1, 0)].end }

func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tOp && t.text == s
}

func (p *parser) isWord(words ...string) bool {
	t := p.peek()
	if t.kind != tIdent {
		return false
	}
	for _, w := range words {
		if t.text == w {
			return true
		}
	}
	return false
}

func (p *parser) expectOp(s string) error {
	if !p.isOp(s) {
		return p.errorf(p.peek(), "expected %q, found %s", s, p.peek())
	}
	p.next()
	return nil
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return fmt.Errorf("at %d: %s", t.start, fmt.Sprintf(format, args...))
}

// Binary operator precedence, loosest first. Level len(levels) is the
// type operators (is, as), which take a type name on their right.
var levels = [][]string{
	{"implies"},
	{"or", "xor"},
	{"and"},
	{"in", "contains"},
	{"=", "~", "!=", "!~"},
	{"<", ">", "<=", ">="},
	{"|"},
}

func (p *parser) atBinaryOp(ops []string) (string, bool) {
	t := p.peek()
	if t.kind != tOp && t.kind != tIdent {
		return "", false
	}
	for _, o := range ops {
		if t.text == o {
			return o, true
		}
	}
	return "", false
}

func (p *parser) parseExpr(level int) (node, error) {
	if level == len(levels) {
		return p.parseTypeExpr()
	}
	start := p.peek().start
	left, err := p.parseExpr(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.atBinaryOp(levels[level])
		if !ok {
			return left, nil
		}
		p.next()
		right, err := p.parseExpr(level + 1)
		if err != nil {
			return nil, err
		}
		left = &binNode{span{start, p.prevEnd()}, op, left, right}
	}
}

func (p *parser) parseTypeExpr() (node, error) {
	start := p.peek().start
	left, err := p.parsePostfix()
	if err != nil {
		return nil, err
	}
	for p.isWord("is", "as") {
		op := p.next().text
		typ, err := p.parseTypeSpec()
		if err != nil {
			return nil, err
		}
		left = &typeNode{span{start, p.prevEnd()}, op, left, typ}
	}
	return left, nil
}

// parseTypeSpec reads a type name: Quantity, FHIR.Quantity, System.String.
func (p *parser) parseTypeSpec() (string, error) {
	t := p.peek()
	if t.kind != tIdent && t.kind != tDelimIdent {
		return "", p.errorf(t, "expected a type name, found %s", t)
	}
	p.next()
	name := t.text
	if (name == "FHIR" || name == "System") && p.isOp(".") {
		p.next()
		t = p.next()
		if t.kind != tIdent && t.kind != tDelimIdent {
			return "", p.errorf(t, "expected a type name, found %s", t)
		}
		name += "." + t.text
	}
	return name, nil
}

func (p *parser) parsePostfix() (node, error) {
	start := p.peek().start
	n, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.next()
			if t.kind != tIdent && t.kind != tDelimIdent {
				return nil, p.errorf(t, "expected a name after '.', found %s", t)
			}
			if t.kind == tIdent && p.isOp("(") {
				n, err = p.parseFunction(start, n, t)
				if err != nil {
					return nil, err
				}
				continue
			}
			n = &memberNode{span{start, t.end}, n, t.text}
		case p.isOp("["):
			p.next()
			idx, err := p.parseExpr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expectOp("]"); err != nil {
				return nil, err
			}
			n = &indexNode{span{start, p.prevEnd()}, n, idx}
		default:
			return n, nil
		}
	}
}

func (p *parser) parseTerm() (node, error) {
	t := p.next()
	sp := span{t.start, t.end}
	switch t.kind {
	case tString:
		return &litNode{sp, []item{{v: t.text, typ: "string"}}}, nil
	case tNumber:
		typ := "integer"
		if strings.Contains(t.text, ".") {
			typ = "decimal"
		}
		return &litNode{sp, []item{{v: json.Number(t.text), typ: typ}}}, nil
	case tExtConst:
		switch t.text {
		case "resource", "rootResource", "context":
			return &varNode{sp, "%" + t.text}, nil
		case "ucum":
			return &litNode{sp, []item{{v: "http://unitsofmeasure.org", typ: "string"}}}, nil
		case "sct":
			return &litNode{sp, []item{{v: "http://snomed.info/sct", typ: "string"}}}, nil
		case "loinc":
			return &litNode{sp, []item{{v: "http://loinc.org", typ: "string"}}}, nil
		}
		return nil, p.errorf(t, "unsupported variable %%%s", t.text)
	case tVar:
		if t.text == "this" {
			return &varNode{sp, "$this"}, nil
		}
		return nil, p.errorf(t, "unsupported variable $%s", t.text)
	case tOp:
		switch t.text {
		case "(":
			inner, err := p.parseExpr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return &parenNode{span{t.start, p.prevEnd()}, inner}, nil
		case "{":
			if err := p.expectOp("}"); err != nil {
				return nil, err
			}
			return &litNode{span{t.start, p.prevEnd()}, nil}, nil
		}
		return nil, p.errorf(t, "unexpected %s", t)
	case tIdent:
		switch t.text {
		case "true", "false":
			return &litNode{sp, []item{{v: t.text == "true", typ: "boolean"}}}, nil
		}
		if p.isOp("(") {
			return p.parseFunction(t.start, nil, t)
		}
		return &identNode{sp, t.text}, nil
	case tDelimIdent:
		return &identNode{sp, t.text}, nil
	}
	return nil, p.errorf(t, "unexpected %s", t)
}

// functions lists the supported functions and how many arguments each
// takes. Those with typeArg take a type name rather than an expression.
var functions = map[string]struct {
	min, max int
	typeArg  bool
}{
	"where":     {1, 1, false},
	"select":    {1, 1, false},
	"exists":    {0, 1, false},
	"all":       {1, 1, false},
	"empty":     {0, 0, false},
	"not":       {0, 0, false},
	"first":     {0, 0, false},
	"last":      {0, 0, false},
	"tail":      {0, 0, false},
	"count":     {0, 0, false},
	"hasValue":  {0, 0, false},
	"resolve":   {0, 0, false},
	"extension": {1, 1, false},
	"union":     {1, 1, false},
	"combine":   {1, 1, false},
	"as":        {1, 1, true},
	"is":        {1, 1, true},
	"ofType":    {1, 1, true},
}

func (p *parser) parseFunction(start int, focus node, name token) (node, error) {
	def, ok := functions[name.text]
	if !ok {
		return nil, p.errorf(name, "unsupported function %s()", name.text)
	}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	f := &funcNode{focus: focus, name: name.text}
	if !p.isOp(")") {
		for {
			if def.typeArg {
				typ, err := p.parseTypeSpec()
				if err != nil {
					return nil, err
				}
				f.typeArg = typ
				f.args = append(f.args, nil)
			} else {
				arg, err := p.parseExpr(0)
				if err != nil {
					return nil, err
				}
				f.args = append(f.args, arg)
			}
			if !p.isOp(",") {
				break
			}
			p.next()
		}
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	if len(f.args) < def.min || len(f.args) > def.max {
		return nil, p.errorf(name, "%s() takes %d to %d arguments, not %d", name.text, def.min, def.max, len(f.args))
	}
	f.span = span{start, p.prevEnd()}
	return f, nil
}

// ---- AST ----

type node interface {
	eval(env env, focus []item) ([]item, error)
	pos() span
}

// span is the byte range of a node in the expression's source.
type span struct{ start, end int }

func (s span) pos() span { return s }

type litNode struct {
	span
	values []item
}

type identNode struct {
	span
	name string
}

type memberNode struct {
	span
	focus node
	name  string
}

type funcNode struct {
	span
	focus   node // nil: applies to the current focus
	name    string
	args    []node
	typeArg string
}

type indexNode struct {
	span
	focus node
	index node
}

type binNode struct {
	span
	op          string
	left, right node
}

type typeNode struct {
	span
	op   string // "is" or "as"
	left node
	typ  string
}

type varNode struct {
	span
	name string
}

type parenNode struct {
	span
	inner node
}

// ---- evaluation ----

func (n *litNode) eval(env, []item) ([]item, error) { return n.values, nil }

func (n *parenNode) eval(env env, focus []item) ([]item, error) { return n.inner.eval(env, focus) }

func (n *varNode) eval(env env, focus []item) ([]item, error) {
	switch n.name {
	case "%resource", "%rootResource":
		return env.resource, nil
	case "%context":
		return env.context, nil
	default: // $this
		return env.this, nil
	}
}

// identNode is the first step of a path: a type name selects the focus
// items of that type, any other name navigates to their children.
func (n *identNode) eval(env env, focus []item) ([]item, error) {
	var out []item
	for _, it := range focus {
		if firstUpper(n.name) && isResourceItem(it) {
			t := itemType(it)
			if t == n.name || n.name == "Resource" || (n.name == "DomainResource" && !resourceOnly[t]) {
				out = append(out, it)
				continue
			}
		}
		out = appendChildren(out, it, n.name)
	}
	return out, nil
}

func (n *memberNode) eval(env env, focus []item) ([]item, error) {
	in, err := n.focus.eval(env, focus)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, it := range in {
		out = appendChildren(out, it, n.name)
	}
	return out, nil
}

// appendChildren appends the children of it named name, flattening arrays
// and finding choice elements by their suffixed keys.
func appendChildren(out []item, it item, name string) []item {
	m, ok := it.v.(map[string]any)
	if !ok {
		return out
	}
	if v, ok := m[name]; ok {
		return appendJSON(out, v, "")
	}
	keys := choiceKeys[name]
	if len(keys) == 0 {
		return out
	}
	if len(m) >= len(keys) {
		for _, k := range keys {
			if v, ok := m[k.key]; ok {
				out = appendJSON(out, v, k.typ)
			}
		}
		return out
	}
	// Fewer members than possible keys (value[x] has 50): scan the members.
	var found []string
	for k := range m {
		if _, ok := choiceKeySet[name][k]; ok {
			found = append(found, k)
		}
	}
	if len(found) > 1 {
		slices.Sort(found)
	}
	for _, k := range found {
		out = appendJSON(out, m[k], choiceKeyTypes[k])
	}
	return out
}

type choiceKey struct{ key, typ string }

var (
	// choiceKeys lists, for each choice element name, its JSON keys and
	// their types: "value" → {"valueQuantity", "Quantity"}, ...
	choiceKeys = map[string][]choiceKey{}
	// choiceKeySet holds the same keys as sets.
	choiceKeySet = map[string]map[string]struct{}{}
	// choiceKeyTypes gives the type of every choice key.
	choiceKeyTypes = map[string]string{}
)

func init() {
	for name, suffixes := range choiceTypes {
		set := make(map[string]struct{}, len(suffixes))
		for _, suffix := range suffixes {
			k := choiceKey{name + suffix, typeFromSuffix(suffix)}
			choiceKeys[name] = append(choiceKeys[name], k)
			set[k.key] = struct{}{}
			choiceKeyTypes[k.key] = k.typ
		}
		choiceKeySet[name] = set
	}
}

func appendJSON(out []item, v any, typ string) []item {
	switch v := v.(type) {
	case nil:
		return out
	case []any:
		for _, e := range v {
			out = appendJSON(out, e, typ)
		}
		return out
	case map[string]any:
		if rt, ok := v["resourceType"].(string); ok && typ == "" {
			typ = rt
		}
	}
	return append(out, item{v: v, typ: typ})
}

func (n *indexNode) eval(env env, focus []item) ([]item, error) {
	in, err := n.focus.eval(env, focus)
	if err != nil {
		return nil, err
	}
	idx, err := n.index.eval(env, focus)
	if err != nil {
		return nil, err
	}
	if len(idx) != 1 {
		return nil, fmt.Errorf("index must be a single integer")
	}
	i, ok := toInt(idx[0].v)
	if !ok {
		return nil, fmt.Errorf("index must be an integer, not %v", idx[0].v)
	}
	if i < 0 || i >= len(in) {
		return nil, nil
	}
	return in[i : i+1], nil
}

func (n *typeNode) eval(env env, focus []item) ([]item, error) {
	in, err := n.left.eval(env, focus)
	if err != nil {
		return nil, err
	}
	return typeOp(n.op, in, n.typ)
}

// typeOp applies "is" or "as" to a collection. Search expressions apply
// "as" to choice elements that may repeat (Observation.component.value as
// Quantity), so "as" filters collections rather than insisting on a
// singleton; "is" on a collection of several items is an error.
func typeOp(op string, in []item, typ string) ([]item, error) {
	if op == "as" {
		var out []item
		for _, it := range in {
			if typeMatches(it, typ) {
				out = append(out, it)
			}
		}
		return out, nil
	}
	switch len(in) {
	case 0:
		return nil, nil
	case 1:
		return boolean(typeMatches(in[0], typ)), nil
	}
	return nil, fmt.Errorf("'is' needs a single item, got %d", len(in))
}

func (n *binNode) eval(env env, focus []item) ([]item, error) {
	left, err := n.left.eval(env, focus)
	if err != nil {
		return nil, err
	}
	right, err := n.right.eval(env, focus)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "|":
		return union(left, right), nil
	case "=", "!=", "~", "!~":
		if len(left) == 0 || len(right) == 0 {
			if n.op == "~" || n.op == "!~" {
				eq := len(left) == len(right)
				return boolean(eq == (n.op == "~")), nil
			}
			return nil, nil
		}
		equiv := n.op == "~" || n.op == "!~"
		eq := len(left) == len(right)
		for i := 0; eq && i < len(left); i++ {
			eq = valuesEqual(left[i].v, right[i].v, equiv)
		}
		return boolean(eq == (n.op == "=" || n.op == "~")), nil
	case "<", ">", "<=", ">=":
		if len(left) == 0 || len(right) == 0 {
			return nil, nil
		}
		if len(left) != 1 || len(right) != 1 {
			return nil, fmt.Errorf("%s needs single items", n.op)
		}
		c, ok := compare(left[0].v, right[0].v)
		if !ok {
			return nil, fmt.Errorf("cannot compare %v with %v", left[0].v, right[0].v)
		}
		switch n.op {
		case "<":
			return boolean(c < 0), nil
		case ">":
			return boolean(c > 0), nil
		case "<=":
			return boolean(c <= 0), nil
		default:
			return boolean(c >= 0), nil
		}
	case "in", "contains":
		elem, coll := left, right
		if n.op == "contains" {
			elem, coll = right, left
		}
		switch len(elem) {
		case 0:
			return nil, nil
		case 1:
		default:
			return nil, fmt.Errorf("%s needs a single item", n.op)
		}
		for _, c := range coll {
			if valuesEqual(elem[0].v, c.v, false) {
				return boolean(true), nil
			}
		}
		return boolean(false), nil
	}
	// Boolean logic, with empty as "unknown".
	l, lok, err := toBool(left)
	if err != nil {
		return nil, err
	}
	r, rok, err := toBool(right)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "and":
		switch {
		case (lok && !l) || (rok && !r):
			return boolean(false), nil
		case lok && rok:
			return boolean(true), nil
		}
	case "or":
		switch {
		case (lok && l) || (rok && r):
			return boolean(true), nil
		case lok && rok:
			return boolean(false), nil
		}
	case "xor":
		if lok && rok {
			return boolean(l != r), nil
		}
	case "implies":
		switch {
		case lok && !l:
			return boolean(true), nil
		case rok && r:
			return boolean(true), nil
		case lok && rok:
			return boolean(false), nil
		}
	}
	return nil, nil
}

func (n *funcNode) eval(env env, focus []item) ([]item, error) {
	in := focus
	if n.focus != nil {
		var err error
		if in, err = n.focus.eval(env, focus); err != nil {
			return nil, err
		}
	}
	switch n.name {
	case "where", "select", "all", "exists":
		if n.name == "exists" && len(n.args) == 0 {
			return boolean(len(in) > 0), nil
		}
		var out []item
		for _, it := range in {
			sub := env
			sub.this = []item{it}
			res, err := n.args[0].eval(sub, sub.this)
			if err != nil {
				return nil, err
			}
			if n.name == "select" {
				out = append(out, res...)
				continue
			}
			ok, known, err := toBool(res)
			if err != nil {
				return nil, fmt.Errorf("%s(): %w", n.name, err)
			}
			switch n.name {
			case "where":
				if known && ok {
					out = append(out, it)
				}
			case "exists":
				if known && ok {
					return boolean(true), nil
				}
			case "all":
				if !known || !ok {
					return boolean(false), nil
				}
			}
		}
		switch n.name {
		case "exists":
			return boolean(false), nil
		case "all":
			return boolean(true), nil
		}
		return out, nil
	case "empty":
		return boolean(len(in) == 0), nil
	case "not":
		b, known, err := toBool(in)
		if err != nil || !known {
			return nil, err
		}
		return boolean(!b), nil
	case "first":
		if len(in) == 0 {
			return nil, nil
		}
		return in[:1], nil
	case "last":
		if len(in) == 0 {
			return nil, nil
		}
		return in[len(in)-1:], nil
	case "tail":
		if len(in) == 0 {
			return nil, nil
		}
		return in[1:], nil
	case "count":
		return []item{{v: json.Number(strconv.Itoa(len(in))), typ: "integer"}}, nil
	case "hasValue":
		if len(in) != 1 {
			return boolean(false), nil
		}
		switch in[0].v.(type) {
		case string, bool, json.Number, float64:
			return boolean(true), nil
		}
		return boolean(false), nil
	case "union", "combine":
		other, err := n.args[0].eval(env, focus)
		if err != nil {
			return nil, err
		}
		if n.name == "union" {
			return union(in, other), nil
		}
		return append(append([]item(nil), in...), other...), nil
	case "extension":
		urls, err := n.args[0].eval(env, focus)
		if err != nil {
			return nil, err
		}
		if len(urls) != 1 {
			return nil, fmt.Errorf("extension() needs a single url")
		}
		url, ok := urls[0].v.(string)
		if !ok {
			return nil, fmt.Errorf("extension() needs a string url")
		}
		var out []item
		for _, it := range in {
			for _, ext := range appendChildren(nil, it, "extension") {
				if m, ok := ext.v.(map[string]any); ok && m["url"] == url {
					out = append(out, ext)
				}
			}
		}
		return out, nil
	case "as", "ofType":
		return typeOp("as", in, n.typeArg)
	case "is":
		return typeOp("is", in, n.typeArg)
	case "resolve":
		var out []item
		for _, it := range in {
			if r, ok := resolve(it, env.resource); ok {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported function %s()", n.name)
}

// resolve finds what a Reference (or a canonical/uri string) points to:
// the contained resource for "#id", else a stand-in knowing the type.
func resolve(it item, resource []item) (item, bool) {
	var ref, typ string
	switch v := it.v.(type) {
	case string:
		ref = v
	case map[string]any:
		ref, _ = v["reference"].(string)
		typ, _ = v["type"].(string)
	default:
		return item{}, false
	}
	if strings.HasPrefix(ref, "#") {
		if len(resource) == 0 {
			return item{}, false
		}
		if ref == "#" {
			return resource[0], true
		}
		root, _ := resource[0].v.(map[string]any)
		for _, c := range appendChildren(nil, item{v: root}, "contained") {
			if m, ok := c.v.(map[string]any); ok && m["id"] == ref[1:] {
				return c, true
			}
		}
		return item{}, false
	}
	if t := referenceType(ref); t != "" {
		return item{v: &resolved{typ: t, ref: ref}, typ: t}, true
	}
	if typ != "" {
		// Reference.type is a URI: "Patient" or ".../StructureDefinition/Patient".
		typ = typ[strings.LastIndexByte(typ, '/')+1:]
		if isResourceType(typ) {
			return item{v: &resolved{typ: typ, ref: ref}, typ: typ}, true
		}
	}
	return item{}, false
}

// referenceType returns the resource type named by a literal reference:
// "Patient/1", "http://x/fhir/Patient/1", "Patient/1/_history/2". It is
// "" when the reference names no known resource type (urn:uuid:..., #id).
func referenceType(ref string) string {
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = ref[:i]
	}
	segs := strings.Split(ref, "/")
	if n := len(segs); n >= 4 && segs[n-2] == "_history" {
		segs = segs[:n-2]
	}
	if n := len(segs); n >= 2 && segs[n-1] != "" && isResourceType(segs[n-2]) {
		return segs[n-2]
	}
	return ""
}

var resourceTypeSet = func() map[string]bool {
	m := make(map[string]bool, len(resourceTypes))
	for _, t := range resourceTypes {
		m[t] = true
	}
	return m
}()

func isResourceType(t string) bool { return resourceTypeSet[t] }

func firstUpper(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsUpper(r)
}

func isResourceItem(it item) bool {
	if _, ok := it.v.(*resolved); ok {
		return true
	}
	if m, ok := it.v.(map[string]any); ok {
		if _, ok := m["resourceType"].(string); ok {
			return true
		}
		return it.typ != "" && isResourceType(it.typ)
	}
	return false
}

// itemType is the FHIR type of an item: the one navigation revealed, else
// one guessed from the JSON (an unknown string is taken as a string).
func itemType(it item) string {
	if it.typ != "" {
		return it.typ
	}
	switch v := it.v.(type) {
	case map[string]any:
		rt, _ := v["resourceType"].(string)
		return rt
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return "decimal"
		}
		return "integer"
	case float64:
		return "decimal"
	}
	return ""
}

// typeMatches reports whether it is of type want (or a subtype of it).
// Names compare case-insensitively so that System types match their FHIR
// counterparts (String and string, DateTime and dateTime).
func typeMatches(it item, want string) bool {
	want = strings.TrimPrefix(strings.TrimPrefix(want, "FHIR."), "System.")
	t := itemType(it)
	for ; t != ""; t = supertypes[t] {
		if strings.EqualFold(t, want) {
			return true
		}
	}
	if isResourceItem(it) {
		rt := itemType(it)
		return want == "Resource" || (want == "DomainResource" && !resourceOnly[rt])
	}
	return false
}

func boolean(b bool) []item { return []item{{v: b, typ: "boolean"}} }

// toBool converts a collection to a boolean the FHIRPath way: empty is
// unknown, a single boolean is itself, any other single item is true.
func toBool(c []item) (value, known bool, err error) {
	switch len(c) {
	case 0:
		return false, false, nil
	case 1:
		if b, ok := c[0].v.(bool); ok {
			return b, true, nil
		}
		return true, true, nil
	}
	return false, false, fmt.Errorf("expected a single boolean, got %d items", len(c))
}

func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(string(v))
		return i, err == nil
	case float64:
		return int(v), v == float64(int(v))
	}
	return 0, false
}

func toRat(v any) (*big.Rat, bool) {
	switch v := v.(type) {
	case json.Number:
		return new(big.Rat).SetString(string(v))
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(v) == nil {
			return nil, false
		}
		return r, true
	}
	return nil, false
}

// valuesEqual compares two JSON values: numbers by value, strings exactly
// (or, for equivalence, ignoring case and runs of white space), objects
// and arrays member by member. Values of different kinds are not equal.
func valuesEqual(a, b any, equiv bool) bool {
	if ra, ok := toRat(a); ok {
		rb, ok := toRat(b)
		return ok && ra.Cmp(rb) == 0
	}
	switch a := a.(type) {
	case string:
		b, ok := b.(string)
		if !ok {
			return false
		}
		if equiv {
			return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
		}
		return a == b
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !valuesEqual(av, bv, equiv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !valuesEqual(a[i], b[i], equiv) {
				return false
			}
		}
		return true
	case *resolved:
		b, ok := b.(*resolved)
		return ok && *a == *b
	}
	return reflect.DeepEqual(a, b)
}

// compare orders two numbers or two strings.
func compare(a, b any) (int, bool) {
	if ra, ok := toRat(a); ok {
		rb, ok := toRat(b)
		if !ok {
			return 0, false
		}
		return ra.Cmp(rb), true
	}
	sa, ok1 := a.(string)
	sb, ok2 := b.(string)
	if !ok1 || !ok2 {
		return 0, false
	}
	return strings.Compare(sa, sb), true
}

// union merges two collections, leaving out duplicates.
func union(a, b []item) []item {
	out := make([]item, 0, len(a)+len(b))
	for _, c := range [][]item{a, b} {
	next:
		for _, it := range c {
			for _, seen := range out {
				if valuesEqual(seen.v, it.v, false) {
					continue next
				}
			}
			out = append(out, it)
		}
	}
	return out
}
