// Package resource knows FHIR R4 resources as JSON: which types exist,
// parsing and validation (github.com/google/fhir/go), the server-owned
// meta, content hashes, and the fields the store keeps beside the JSON.
//
// The JSON a client sends is kept as written (numbers keep their text:
// FHIR decimals are never turned into floats); the server only rewrites
// id and meta, keeping the other elements in the client's order.
package resource

import (
	"regexp"
	"sort"

	r4pb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

var (
	typeList []string
	typeSet  = map[string]bool{}
)

func init() {
	fields := (&r4pb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource").Fields()
	for i := 0; i < fields.Len(); i++ {
		n := string(fields.Get(i).Message().Name())
		typeSet[n] = true
		typeList = append(typeList, n)
	}
	sort.Strings(typeList)
}

// Types lists every R4 resource type, sorted.
func Types() []string { return append([]string(nil), typeList...) }

// IsType reports whether name is an R4 resource type.
func IsType(name string) bool { return typeSet[name] }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`)

// ValidID reports whether id is a valid FHIR logical id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

var elements = map[string]map[string]bool{}

func init() {
	fields := (&r4pb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource").Fields()
	for i := 0; i < fields.Len(); i++ {
		md := fields.Get(i).Message()
		set := map[string]bool{}
		for j := 0; j < md.Fields().Len(); j++ {
			set[md.Fields().Get(j).JSONName()] = true
		}
		elements[string(md.Name())] = set
	}
}

// HasElement reports whether resource type typ has a top-level element
// with this JSON name (e.g. "identifier").
func HasElement(typ, name string) bool { return elements[typ][name] }
