package jobs

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// Unmarshal decodes JSON data into v as json.Unmarshal does, and also takes
// a number or a boolean written as a string ("22", "5432", "true") where v
// has a number or a boolean, when the string reads as one value of that type
// and nothing else. Clients of the reference controller send them so (its
// public job-data model types ports as strings), and it accepts them. Every
// request field and every command's job_data is read by this one rule; any
// other mismatch is the *json.UnmarshalTypeError json.Unmarshal gives.
func Unmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Value != "string" {
		return err
	}
	// The slow path, taken only by input that needs it: read the value
	// generically, turn the strings v's types want as numbers or booleans
	// into those, and decode again.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if dec.Decode(&tree) != nil {
		return err
	}
	tree, changed := unquoteScalars(tree, reflect.TypeOf(v))
	if !changed {
		return err
	}
	fixed, merr := json.Marshal(tree)
	if merr != nil {
		return err
	}
	return json.Unmarshal(fixed, v)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// unquoteScalars walks the decoded value x beside the type t it will be
// decoded into, and replaces the strings that t wants as numbers or booleans
// by them. It reports whether it replaced any.
func unquoteScalars(x any, t reflect.Type) (any, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return x, false // the type reads its own forms
	}
	switch v := x.(type) {
	case string:
		return unquoteScalar(v, t)
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return x, false
		}
		changed := false
		for i := range v {
			var c bool
			v[i], c = unquoteScalars(v[i], t.Elem())
			changed = changed || c
		}
		return v, changed
	case map[string]any:
		return v, unquoteFields(v, t)
	}
	return x, false
}

// unquoteFields walks an object's members beside the map or struct type t.
func unquoteFields(obj map[string]any, t reflect.Type) bool {
	changed := false
	for key, val := range obj {
		var ft reflect.Type
		switch t.Kind() {
		case reflect.Map:
			ft = t.Elem()
		case reflect.Struct:
			f, ok := fieldFor(t, key)
			if !ok {
				continue
			}
			ft = f
		default:
			return false
		}
		var c bool
		obj[key], c = unquoteScalars(val, ft)
		changed = changed || c
	}
	return changed
}

// fieldFor is the type of the struct field that the object member key
// decodes into, by encoding/json's rules: the json tag's name or the field's
// name, an exact match before a case-insensitive one, and the fields of
// untagged embedded structs as the struct's own.
func fieldFor(t reflect.Type, key string) (reflect.Type, bool) {
	var folded reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && !strings.HasPrefix(f.Tag.Get("json"), "-,") {
			continue
		}
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if ft, ok := fieldFor(et, key); ok {
					return ft, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f.Type, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = f.Type
		}
	}
	return folded, folded != nil
}

// unquoteScalar is s as the number or boolean t wants, when s is exactly one.
func unquoteScalar(s string, t reflect.Type) (any, bool) {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(s, 10, t.Bits()); err == nil {
			return json.Number(s), true
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseUint(s, 10, t.Bits()); err == nil {
			return json.Number(s), true
		}
	case reflect.Float32, reflect.Float64:
		// A JSON number literal only: not "NaN", "Inf", "0x10" or " 1".
		if s != "" && s == strings.TrimSpace(s) && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s)) {
			return json.Number(s), true
		}
	case reflect.Bool:
		switch {
		case strings.EqualFold(s, "true"):
			return true, true
		case strings.EqualFold(s, "false"):
			return false, true
		}
	}
	return s, false
}
