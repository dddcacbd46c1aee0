package search

import (
	"errors"
	"fmt"
)

// Composite is what Extract gives for a composite parameter: one per node
// the parameter's expression selects (the Observation, or each of its
// components), with the values each Param.Components expression selects
// relative to that node, in the same order. Keeping the parts of one node
// together is what lets code-value-quantity match a code and a value of
// the same Observation.component, not of two different ones.
type Composite struct {
	Node       any
	Components [][]any
}

// Extract evaluates every search parameter of resourceType on resource (a
// resource decoded from JSON, preferably with json.Decoder.UseNumber) and
// returns, by parameter code, the JSON nodes each selects: strings,
// json.Numbers, bools and objects (a HumanName, a CodeableConcept, a
// Reference, ...) as found in the resource, or Composite values for
// composite parameters. Parameters that select nothing are left out, as
// are those without an expression, and composites missing one of their
// parts (no search could match them).
//
// An expression failing on this resource (say, where() criteria meeting
// several values) does not stop the others: Extract returns what it could
// extract together with the errors, joined.
func (r *Registry) Extract(resourceType string, resource map[string]any) (map[string][]any, error) {
	if rt, ok := resource["resourceType"].(string); ok && rt != resourceType {
		return nil, fmt.Errorf("resource is a %s, not a %s", rt, resourceType)
	}
	if !r.types[resourceType] {
		return nil, fmt.Errorf("unknown resource type %q", resourceType)
	}
	root := item{v: resource, typ: resourceType}
	out := map[string][]any{}
	var errs []error
	for _, p := range r.params[resourceType] {
		if p.expr == nil {
			continue
		}
		items, err := p.expr.evalItems(root, nil)
		var vals []any
		if err == nil {
			if p.Type == "composite" {
				vals, err = composites(p, root, items)
			} else {
				vals = jsonValues(items)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("search parameter %s (%s): %w", p.Code, p.URL, err))
			continue
		}
		if len(vals) > 0 {
			out[p.Code] = vals
		}
	}
	return out, errors.Join(errs...)
}

func composites(p *Param, root item, nodes []item) ([]any, error) {
	var out []any
next:
	for _, n := range nodes {
		if _, stub := n.v.(*resolved); stub {
			continue
		}
		c := Composite{Node: n.v, Components: make([][]any, len(p.Components))}
		for i, comp := range p.Components {
			vals, err := comp.expr.evaluate(root, &n)
			if err != nil {
				return nil, fmt.Errorf("component %d: %w", i, err)
			}
			if len(vals) == 0 {
				continue next
			}
			c.Components[i] = vals
		}
		out = append(out, c)
	}
	return out, nil
}
