package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// ParseDesiredState reads an apply file in JSON strictly: an unknown field
// or a value of the wrong type is an *InvalidArgumentError naming its path
// (e.g. "authorizations[3].bindings[0].gruop"), where encoding/json would
// name the field only.
func ParseDesiredState(data []byte) (DesiredState, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		if errors.Is(err, io.EOF) {
			return DesiredState{}, invalid("file", "is empty, expected an object with groups, plans, keys and authorizations")
		}
		return DesiredState{}, invalid("file", "is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return DesiredState{}, invalid("file", "must hold a single JSON object")
	}
	var d DesiredState
	if tree == nil {
		return d, invalid("file", "must be an object with groups, plans, keys and authorizations, not null")
	}
	return d, decodeStrict("", tree, reflect.ValueOf(&d).Elem())
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// decodeStrict stores a decoded JSON value (objects as map[string]any,
// numbers as json.Number) in dst, a struct field by field and a list item
// by item, so that each error carries the path where it arose. Values the
// walk does not descend into go through encoding/json.
func decodeStrict(path string, value any, dst reflect.Value) error {
	if value == nil {
		return nil // null leaves the zero value, as encoding/json does
	}
	t := dst.Type()
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return decodeLeaf(path, value, dst)
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := reflect.New(t.Elem())
		if err := decodeStrict(path, value, elem.Elem()); err != nil {
			return err
		}
		dst.Set(elem)
		return nil
	case reflect.Slice:
		items, ok := value.([]any)
		if !ok {
			return invalid(path, "must be a list")
		}
		list := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			if err := decodeStrict(fmt.Sprintf("%s[%d]", path, i), item, list.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(list)
		return nil
	case reflect.Struct:
		object, ok := value.(map[string]any)
		if !ok {
			return invalid(orFile(path), "must be an object")
		}
		fields := make(map[string][]int)
		jsonFields(t, nil, fields)
		for _, name := range slices.Sorted(maps.Keys(object)) {
			field := joinPath(path, name)
			index, ok := fields[name]
			if !ok {
				return invalid(field, "is not a field here (known: %s)", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			}
			if err := decodeStrict(field, object[name], dst.FieldByIndex(index)); err != nil {
				return err
			}
		}
		return nil
	}
	return decodeLeaf(path, value, dst)
}

// decodeLeaf decodes a value of a basic or self-decoding type through
// encoding/json, answering a mismatch with what the path expects.
func decodeLeaf(path string, value any, dst reflect.Value) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return invalid(orFile(path), "cannot be read: %v", err)
	}
	if err := json.Unmarshal(raw, dst.Addr().Interface()); err != nil {
		return invalid(orFile(path), "must be %s", expected(dst.Type()))
	}
	return nil
}

// expected names what a value of type t looks like in the file.
func expected(t reflect.Type) string {
	switch {
	case t.PkgPath() == "time" && t.Name() == "Time":
		return "an RFC 3339 time such as 2027-01-31T00:00:00Z"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// jsonFields maps the JSON names of a struct's fields to their index
// paths, the fields of an embedded struct among them, as encoding/json
// does.
func jsonFields(t reflect.Type, prefix []int, fields map[string][]int) {
	for i := range t.NumField() {
		f := t.Field(i)
		index := append(slices.Clone(prefix), i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			jsonFields(f.Type, index, fields)
		case name != "" && name != "-":
			fields[name] = index
		}
	}
}

// joinPath names a member of the object at path: path.name, or
// path["name"] for a name that is empty or holds other characters than
// letters, digits and _ (so a path is never empty and always readable).
func joinPath(path, name string) string {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// orFile names the whole file when path is its root.
func orFile(path string) string {
	if path == "" {
		return "file"
	}
	return path
}
