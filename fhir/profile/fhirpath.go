package profile

import (
	"fmt"
	"strings"
	"unicode"
)

// A tiny FHIRPath subset for invariants, evaluated with an element as the
// context: paths of element names (arrays flatten, a choice element is
// found by its base name), $this, parentheses, the functions exists(),
// empty(), not(), hasValue() and count() (count only as an operand of
// nothing else: it yields a number, true when non-zero in a boolean
// context), and the boolean operators and, or, xor, implies with FHIRPath's
// three-valued logic. Anything else is refused when the profile loads.

type fpExpr struct {
	op          string // "path", "and", "or", "xor", "implies", "call"
	left, right *fpExpr
	steps       []string // for path: names; for call: the function
	fn          string
}

type fpParser struct {
	toks []string
	pos  int
	src  string
}

func compileFHIRPath(src string) (*fpExpr, error) {
	toks, err := fpTokens(src)
	if err != nil {
		return nil, err
	}
	p := &fpParser{toks: toks, src: src}
	x, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("fhirpath %q: unexpected %q", src, p.toks[p.pos])
	}
	return x, nil
}

func fpTokens(src string) ([]string, error) {
	var toks []string
	for i := 0; i < len(src); {
		c := rune(src[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case strings.ContainsRune("().", c):
			toks = append(toks, string(c))
			i++
		case c == '$' || c == '_' || unicode.IsLetter(c):
			j := i + 1
			for j < len(src) && (src[j] == '_' || unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j]))) {
				j++
			}
			toks = append(toks, src[i:j])
			i = j
		default:
			return nil, fmt.Errorf("fhirpath %q: unsupported character %q", src, c)
		}
	}
	return toks, nil
}

var fpPrec = map[string]int{"implies": 1, "or": 2, "xor": 2, "and": 3}

func (p *fpParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *fpParser) expr(min int) (*fpExpr, error) {
	left, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		prec, ok := fpPrec[op]
		if !ok || prec < min {
			return left, nil
		}
		p.pos++
		right, err := p.expr(prec + 1)
		if err != nil {
			return nil, err
		}
		left = &fpExpr{op: op, left: left, right: right}
	}
}

var fpFuncs = map[string]bool{"exists": true, "empty": true, "not": true, "hasValue": true, "count": true}

func (p *fpParser) term() (*fpExpr, error) {
	var x *fpExpr
	switch t := p.peek(); {
	case t == "(":
		p.pos++
		in, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("fhirpath %q: missing )", p.src)
		}
		p.pos++
		x = in
	case t == "" || t == ")" || t == "." || fpPrec[t] > 0:
		return nil, fmt.Errorf("fhirpath %q: unexpected %q", p.src, t)
	default:
		p.pos++
		if p.peek() == "(" {
			return nil, fmt.Errorf("fhirpath %q: function %s() needs a focus", p.src, t)
		}
		x = &fpExpr{op: "path", steps: []string{t}}
	}
	for p.peek() == "." {
		p.pos++
		name := p.peek()
		if name == "" || strings.ContainsAny(name, "().") {
			return nil, fmt.Errorf("fhirpath %q: a name must follow '.'", p.src)
		}
		p.pos++
		if p.peek() == "(" {
			if !fpFuncs[name] {
				return nil, fmt.Errorf("fhirpath %q: function %s() is not supported", p.src, name)
			}
			p.pos++
			if p.peek() != ")" {
				return nil, fmt.Errorf("fhirpath %q: %s() takes no argument here", p.src, name)
			}
			p.pos++
			x = &fpExpr{op: "call", fn: name, left: x}
			continue
		}
		if x.op == "path" {
			x.steps = append(x.steps, name)
		} else {
			x = &fpExpr{op: "path", left: x, steps: []string{name}}
		}
	}
	return x, nil
}

// eval returns the collection the expression yields on focus.
func (x *fpExpr) eval(focus any) []any {
	switch x.op {
	case "path":
		cur := []any{focus}
		if x.left != nil {
			cur = x.left.eval(focus)
		}
		for _, s := range x.steps {
			if s == "$this" {
				continue
			}
			var next []any
			for _, c := range cur {
				m, ok := c.(map[string]any)
				if !ok {
					continue
				}
				if v, ok := m[s]; ok {
					next = append(next, nonNull(asList(v))...)
					continue
				}
				for k, v := range m { // choice element by base name
					if len(k) > len(s) && strings.HasPrefix(k, s) && unicode.IsUpper(rune(k[len(s)])) {
						next = append(next, nonNull(asList(v))...)
					}
				}
			}
			cur = next
		}
		return cur
	case "call":
		in := x.left.eval(focus)
		switch x.fn {
		case "exists", "hasValue":
			return []any{len(in) > 0}
		case "empty":
			return []any{len(in) == 0}
		case "count":
			return []any{len(in)}
		case "not":
			b, ok := truth(in)
			if !ok {
				return nil
			}
			return []any{!b}
		}
	}
	l, lok := truth(x.left.eval(focus))
	r, rok := truth(x.right.eval(focus))
	switch x.op {
	case "and":
		if (lok && !l) || (rok && !r) {
			return []any{false}
		}
		if lok && rok {
			return []any{true}
		}
	case "or":
		if (lok && l) || (rok && r) {
			return []any{true}
		}
		if lok && rok {
			return []any{false}
		}
	case "xor":
		if lok && rok {
			return []any{l != r}
		}
	case "implies":
		if lok && !l {
			return []any{true}
		}
		if rok && r {
			return []any{true}
		}
		if lok && rok {
			return []any{false}
		}
	}
	return nil
}

// truth is FHIRPath's singleton evaluation of a collection as a Boolean:
// ok is false for the empty collection (unknown).
func truth(c []any) (b, ok bool) {
	if len(c) == 0 {
		return false, false
	}
	if len(c) == 1 {
		switch v := c[0].(type) {
		case bool:
			return v, true
		case int:
			return v != 0, true
		}
	}
	return true, true
}

func nonNull(l []any) []any {
	out := l[:0:0]
	for _, v := range l {
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}
