package search

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
)

// Param is a search parameter as it applies to one resource type.
type Param struct {
	Name string
	Code string // the name used in URLs: "family", "_id", ...
	URL  string // canonical URL of the definition
	// Type is string, token, reference, date, number, quantity, uri,
	// composite or special.
	Type string
	// Base lists the resource types the definition is for, as written in it
	// (e.g. "Resource" for _id).
	Base []string
	// Expression is the FHIRPath expression for this resource type only:
	// the branches of the definition's expression that start with this
	// type (or Resource/DomainResource). Empty for parameters the server
	// must handle itself (_text, _content, _has, ...).
	Expression  string
	Target      []string    // reference: the resource types it may point to
	Components  []Component // composite: its parts
	Modifiers   []string
	Comparators []string
	MultipleOr  *bool
	MultipleAnd *bool

	expr *Expr // compiled Expression, nil if empty
}

// Component is one part of a composite search parameter.
type Component struct {
	Definition string // URL of the search parameter giving the part's type
	Expression string // relative to each node the composite's expression selects

	expr *Expr
}

// Registry holds the search parameters of every resource type. It is
// read-only once loaded and safe for concurrent use.
type Registry struct {
	types map[string]bool
	// byType holds the parameters defined for one type; shared those
	// defined on Resource and DomainResource, which apply to all types
	// (DomainResource ones not to Binary, Bundle and Parameters).
	byType map[string]map[string]*Param
	// byURL holds each definition as written, with its whole expression.
	byURL map[string]*Param
	// params holds, once loaded, each type's parameters sorted by code.
	params map[string][]*Param
}

// builtins are the parameters that the FHIR search page defines for every
// resource but that the R4 SearchParameter bundle does not contain. None
// has an expression: the server implements them itself. Their URLs are
// those later FHIR versions give them.
var builtins = []Param{
	{Code: "_has", Name: "_has", URL: "http://hl7.org/fhir/SearchParameter/Resource-has", Type: "special", Base: []string{"Resource"}},
	{Code: "_list", Name: "_list", URL: "http://hl7.org/fhir/SearchParameter/Resource-list", Type: "special", Base: []string{"Resource"}},
	{Code: "_type", Name: "_type", URL: "http://hl7.org/fhir/SearchParameter/Resource-type", Type: "token", Base: []string{"Resource"}},
	{Code: "_filter", Name: "_filter", URL: "http://hl7.org/fhir/SearchParameter/Resource-filter", Type: "special", Base: []string{"Resource"}},
}

var paramTypes = map[string]bool{
	"string": true, "token": true, "reference": true, "date": true, "number": true,
	"quantity": true, "uri": true, "composite": true, "special": true,
}

// LoadRegistry reads search parameters from files of fsys: Bundles of
// SearchParameter resources (other entries are ignored) or single
// SearchParameter resources. A later definition replaces an earlier one
// with the same URL, and, for each of its base types, an earlier one
// with the same code: later files can add or override parameters.
//
// Every expression must compile; an expression using FHIRPath beyond the
// supported subset is an error.
func LoadRegistry(fsys fs.FS, files ...string) (*Registry, error) {
	r := &Registry{
		types:  make(map[string]bool, len(resourceTypes)+2),
		byType: map[string]map[string]*Param{},
		byURL:  map[string]*Param{},
	}
	for _, t := range resourceTypes {
		r.types[t] = true
	}
	for _, b := range builtins {
		if err := r.add(b); err != nil {
			return nil, err
		}
	}
	for _, name := range files {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		defs, err := decodeDefinitions(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, d := range defs {
			if err := r.add(d); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	r.params = make(map[string][]*Param, len(r.types))
	for t := range r.types {
		r.params[t] = r.collect(t)
	}
	return r, nil
}

type jsonSearchParameter struct {
	ResourceType string   `json:"resourceType"`
	URL          string   `json:"url"`
	Name         string   `json:"name"`
	Code         string   `json:"code"`
	Base         []string `json:"base"`
	Type         string   `json:"type"`
	Expression   string   `json:"expression"`
	Target       []string `json:"target"`
	Modifier     []string `json:"modifier"`
	Comparator   []string `json:"comparator"`
	MultipleOr   *bool    `json:"multipleOr"`
	MultipleAnd  *bool    `json:"multipleAnd"`
	Component    []struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	} `json:"component"`
}

func (j *jsonSearchParameter) param() Param {
	p := Param{
		Name: j.Name, Code: j.Code, URL: j.URL, Type: j.Type, Base: j.Base,
		Expression: strings.TrimSpace(j.Expression), Target: j.Target,
		Modifiers: j.Modifier, Comparators: j.Comparator,
		MultipleOr: j.MultipleOr, MultipleAnd: j.MultipleAnd,
	}
	for _, c := range j.Component {
		p.Components = append(p.Components, Component{Definition: c.Definition, Expression: strings.TrimSpace(c.Expression)})
	}
	return p
}

func decodeDefinitions(data []byte) ([]Param, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	switch head.ResourceType {
	case "Bundle":
		for _, e := range head.Entry {
			if len(e.Resource) > 0 {
				raws = append(raws, e.Resource)
			}
		}
	case "SearchParameter":
		raws = append(raws, data)
	default:
		return nil, fmt.Errorf("resourceType %q is neither Bundle nor SearchParameter", head.ResourceType)
	}
	var out []Param
	for _, raw := range raws {
		var sp jsonSearchParameter
		if err := json.Unmarshal(raw, &sp); err != nil {
			return nil, err
		}
		if sp.ResourceType != "SearchParameter" {
			continue
		}
		out = append(out, sp.param())
	}
	return out, nil
}

// add registers one definition, split per base type.
func (r *Registry) add(def Param) error {
	what := def.URL
	if what == "" {
		what = def.Code
	}
	switch {
	case def.Code == "":
		return fmt.Errorf("search parameter %s has no code", what)
	case len(def.Base) == 0:
		return fmt.Errorf("search parameter %s has no base", what)
	case !paramTypes[def.Type]:
		return fmt.Errorf("search parameter %s has type %q", what, def.Type)
	case def.Type == "composite" && len(def.Components) == 0:
		return fmt.Errorf("composite search parameter %s has no components", what)
	}
	for i := range def.Components {
		c := &def.Components[i]
		if c.Expression == "" {
			return fmt.Errorf("search parameter %s: component %d has no expression", what, i)
		}
		e, err := Compile(c.Expression)
		if err != nil {
			return fmt.Errorf("search parameter %s: component %d: %w", what, i, err)
		}
		c.expr = e
	}
	perBase := map[string]string{}
	if def.Expression != "" {
		var err error
		if perBase, err = splitByBase(def.Expression, def.Base); err != nil {
			return fmt.Errorf("search parameter %s: %w", what, err)
		}
	}
	if def.URL != "" {
		if old, ok := r.byURL[def.URL]; ok {
			r.remove(old)
		}
		d := def
		r.byURL[def.URL] = &d
	}
	for _, base := range def.Base {
		p := def
		p.Expression = perBase[base]
		if p.Expression != "" {
			e, err := Compile(p.Expression)
			if err != nil {
				return fmt.Errorf("search parameter %s: %w", what, err)
			}
			p.expr = e
		}
		if r.byType[base] == nil {
			r.byType[base] = map[string]*Param{}
		}
		r.byType[base][def.Code] = &p
		if base != "Resource" && base != "DomainResource" {
			r.types[base] = true
		}
	}
	return nil
}

// remove drops the per-type parameters an earlier definition registered.
func (r *Registry) remove(def *Param) {
	for _, base := range def.Base {
		if p, ok := r.byType[base][def.Code]; ok && p.URL == def.URL {
			delete(r.byType[base], def.Code)
		}
	}
	delete(r.byURL, def.URL)
}

// splitByBase splits an expression's top-level union into branches and
// gives each base type the branches that start with it (by type name as
// first step). Branches starting with Resource or DomainResource, or not
// with a type name at all, go to every base type.
func splitByBase(src string, bases []string) (map[string]string, error) {
	e, err := Compile(src)
	if err != nil {
		return nil, err
	}
	var branches []node
	var flatten func(n node)
	flatten = func(n node) {
		if b, ok := n.(*binNode); ok && b.op == "|" {
			flatten(b.left)
			flatten(b.right)
			return
		}
		branches = append(branches, n)
	}
	flatten(e.root)
	parts := map[string][]string{}
	for _, b := range branches {
		text := strings.TrimSpace(src[b.pos().start:b.pos().end])
		root := rootType(b)
		for _, base := range bases {
			if root == "" || root == base || root == "Resource" || root == "DomainResource" {
				parts[base] = append(parts[base], text)
			}
		}
	}
	out := make(map[string]string, len(parts))
	for base, texts := range parts {
		out[base] = strings.Join(texts, " | ")
	}
	return out, nil
}

// rootType returns the type name a path expression starts with ("" when it
// does not start with one).
func rootType(n node) string {
	for {
		switch x := n.(type) {
		case *identNode:
			if firstUpper(x.name) {
				return x.name
			}
			return ""
		case *memberNode:
			n = x.focus
		case *funcNode:
			if x.focus == nil {
				return ""
			}
			n = x.focus
		case *indexNode:
			n = x.focus
		case *typeNode:
			n = x.left
		case *binNode:
			n = x.left
		case *parenNode:
			n = x.inner
		default:
			return ""
		}
	}
}

// Lookup returns the search parameter code of resourceType, including the
// ones defined on Resource and DomainResource.
func (r *Registry) Lookup(resourceType, code string) (*Param, bool) {
	if !r.types[resourceType] {
		return nil, false
	}
	for _, base := range r.bases(resourceType) {
		if p, ok := r.byType[base][code]; ok {
			return p, true
		}
	}
	return nil, false
}

// bases lists where the parameters of resourceType are kept, most specific
// first.
func (r *Registry) bases(resourceType string) []string {
	if resourceOnly[resourceType] {
		return []string{resourceType, "Resource"}
	}
	return []string{resourceType, "DomainResource", "Resource"}
}

// Params returns every search parameter of resourceType, sorted by code
// (nil for an unknown type). The slice is the caller's.
func (r *Registry) Params(resourceType string) []*Param {
	return slices.Clone(r.params[resourceType])
}

func (r *Registry) collect(resourceType string) []*Param {
	seen := map[string]bool{}
	var out []*Param
	for _, base := range r.bases(resourceType) {
		for code, p := range r.byType[base] {
			if !seen[code] {
				seen[code] = true
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// ByURL returns a definition by its canonical URL, as written: with its
// whole expression, for all its base types. Composite components name
// their parts this way.
func (r *Registry) ByURL(url string) (*Param, bool) {
	p, ok := r.byURL[url]
	return p, ok
}

// Types lists the resource types the registry knows, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.types))
	for t := range r.types {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
