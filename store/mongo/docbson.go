package mongo

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// UnmarshalBSON decodes a stored document by walking its bytes, field by
// field: every read and search decodes one per version, and the driver's
// reflection over the index maps (k, r, os, on) cost about as much CPU
// as the find (BENCHMARKS.md). Index field names stay escaped, as stored
// (doc.version unescapes them). Unknown fields are ignored, null ones
// left empty; a field of another unexpected BSON type is an error.
func (d *doc) UnmarshalBSON(data []byte) error {
	*d = doc{}
	elems, err := bsoncore.Document(data).Elements()
	if err != nil {
		return fmt.Errorf("stored document: %w", err)
	}
	for _, e := range elems {
		key, val := e.Key(), e.Value()
		var ok bool
		switch key {
		case "_id":
			d.ID, ok = val.StringValueOK()
		case "id":
			d.RID, ok = val.StringValueOK()
		case "t":
			d.Type, ok = val.StringValueOK()
		case "v":
			d.V, ok = val.AsInt64OK()
		case "ts":
			d.TS, ok = val.AsInt64OK()
		case "del":
			d.Del, ok = val.BooleanOK()
		case "m":
			d.Method, ok = val.StringValueOK()
		case "j":
			d.JSON, ok = val.StringValueOK()
		case "h":
			d.Hash, ok = val.StringValueOK()
		case "p":
			d.Patient, ok = val.StringValueOK()
		case "s":
			d.Sec, ok = stringList(val)
		case "o":
			d.Org, ok = val.StringValueOK()
		case "a":
			d.Author, ok = val.StringValueOK()
		case "tx":
			d.Tx, ok = val.StringValueOK()
		case "k":
			d.Keys, ok = eachField(val, stringList)
		case "os":
			d.SortStr, ok = eachField(val, func(v bsoncore.Value) (string, bool) { return v.StringValueOK() })
		case "r":
			d.Ranges, ok = eachField(val, ranges)
		case "on":
			d.SortNum, ok = eachField(val, floats)
		case "b":
			d.Blob, ok = blobRef(val)
		default:
			ok = true
		}
		if !ok && val.Type != bsoncore.TypeNull {
			return fmt.Errorf("stored document: field %q of type %s", key, val.Type)
		}
	}
	return nil
}

// eachField decodes an embedded document as a map, each value with dec.
func eachField[V any](val bsoncore.Value, dec func(bsoncore.Value) (V, bool)) (map[string]V, bool) {
	sub, ok := val.DocumentOK()
	if !ok {
		return nil, false
	}
	elems, err := sub.Elements()
	if err != nil {
		return nil, false
	}
	out := make(map[string]V, len(elems))
	for _, e := range elems {
		v, ok := dec(e.Value())
		if !ok {
			return nil, false
		}
		out[e.Key()] = v
	}
	return out, true
}

// each decodes an array, each value with dec.
func each[V any](val bsoncore.Value, dec func(bsoncore.Value) (V, bool)) ([]V, bool) {
	arr, ok := val.ArrayOK()
	if !ok {
		return nil, false
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, false
	}
	out := make([]V, len(vals))
	for i, v := range vals {
		if out[i], ok = dec(v); !ok {
			return nil, false
		}
	}
	return out, true
}

func stringList(val bsoncore.Value) ([]string, bool) {
	return each(val, func(v bsoncore.Value) (string, bool) { return v.StringValueOK() })
}

func floats(val bsoncore.Value) ([]float64, bool) {
	return each(val, func(v bsoncore.Value) (float64, bool) { return v.AsFloat64OK() })
}

func ranges(val bsoncore.Value) ([]rangeDoc, bool) {
	return each(val, func(v bsoncore.Value) (rangeDoc, bool) {
		var r rangeDoc
		sub, ok := v.DocumentOK()
		if !ok {
			return r, false
		}
		lo, err1 := sub.LookupErr("lo")
		hi, err2 := sub.LookupErr("hi")
		if err1 != nil || err2 != nil {
			return r, false
		}
		var ok1, ok2 bool
		r.Lo, ok1 = lo.AsFloat64OK()
		r.Hi, ok2 = hi.AsFloat64OK()
		return r, ok1 && ok2
	})
}

func blobRef(val bsoncore.Value) (*blobRefDoc, bool) {
	sub, ok := val.DocumentOK()
	if !ok {
		return nil, false
	}
	b := &blobRefDoc{}
	elems, err := sub.Elements()
	if err != nil {
		return nil, false
	}
	for _, e := range elems {
		v := e.Value()
		switch e.Key() {
		case "k":
			b.Key, ok = v.StringValueOK()
		case "n":
			b.Size, ok = v.AsInt64OK()
		case "s":
			b.SHA1, ok = v.StringValueOK()
		default:
			ok = true
		}
		if !ok {
			return nil, false
		}
	}
	return b, true
}
