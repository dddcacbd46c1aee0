package mongo

import (
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dossier-fhir/dossier/store"
)

// plainDoc is doc without its UnmarshalBSON: the driver's reflective
// decoding, the reference.
type plainDoc doc

// The hand decoder gives what the driver's reflection gives, for current
// and history documents, with and without the optional fields.
func TestDocUnmarshalBSON(t *testing.T) {
	now := time.Date(2026, 11, 29, 6, 0, 0, 123000, time.UTC)
	full := &store.Version{
		Type: "Observation", ID: "o1", VersionID: 3, LastUpdated: now, Method: "PUT",
		JSON: []byte(`{"resourceType":"Observation","id":"o1"}`), Hash: "h", Patient: "p1",
		Security: []string{"s|A", "s|B"}, Org: "org1", Author: "a1",
		Keys:    map[string][]string{"code": {"x|1", "1"}, "name:exact": {"A.b$c%"}, "empty": {}},
		Ranges:  map[string][]store.Range{"date": {{Lo: 1, Hi: 2}, {Lo: -3.5, Hi: 4e15}}},
		SortStr: map[string]string{"code.text": "a"},
		SortNum: map[string][2]float64{"date": {1, 2}},
		Blob:    &store.BlobRef{Key: "k", Size: 12, SHA1: []byte{1, 2, 3}},
	}
	deleted := &store.Version{Type: "Patient", ID: "p1", VersionID: 2, LastUpdated: now, Method: "DELETE", Deleted: true}
	for _, tc := range []struct {
		name string
		d    *doc
	}{
		{"full", toDoc(full, false)},
		{"history", func() *doc { d := toDoc(full, true); d.Tx = "tx1"; return d }()},
		{"deleted", toDoc(deleted, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := bson.Marshal(tc.d)
			if err != nil {
				t.Fatal(err)
			}
			var got doc
			if err := bson.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			var want plainDoc
			if err := bson.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			ref := doc(want)
			if !reflect.DeepEqual(got, ref) {
				t.Fatalf("hand decoder:\n%+v\nreflection:\n%+v", got, ref)
			}
			if !reflect.DeepEqual(got.version(), ref.version()) {
				t.Fatalf("versions differ")
			}
		})
	}
	// A field of the wrong type is an error, not a silent zero.
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: "x"}, {Key: "v", Value: "one"}})
	var d doc
	if err := bson.Unmarshal(raw, &d); err == nil {
		t.Fatal("a string version decoded without error")
	}
}
