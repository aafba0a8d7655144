package fsm

import (
	"encoding"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// resourcesHint says where a task's dependencies go instead of its fields.
const resourcesHint = "put dependencies such as clients and pools in the worker's resources " +
	"(worker.Config.Resources, read in the task with kvstore.Get[T](tc.Resources, key))"

// registeredSpec is taskSpec for a task registered in a workflow, checked
// for fields that would not reach the workers as they are: an unexported
// field holding a value (msgpack drops it) or an exported one msgpack
// cannot encode. what names the task in the error ("task for state
// \"fetch\""). Only registration checks: the reflection is not paid per
// task run (a dynamic split's branches are encoded without it).
func registeredSpec(what string, t Task, cfg *TaskConfig) (protocol.TaskSpec, error) {
	if t == nil {
		return protocol.TaskSpec{}, fmt.Errorf("%s: nil task", what)
	}
	if err := configOf(t, cfg).check(); err != nil {
		return protocol.TaskSpec{}, fmt.Errorf("%s: %w", what, err)
	}
	v := reflect.ValueOf(t)
	typeName := taskTypeName(v.Type())
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	fields := v.Kind() == reflect.Struct && !customEncoding(v.Type())
	if fields {
		if name := droppedField(v); name != "" {
			return protocol.TaskSpec{}, fmt.Errorf("%s (type %s): field %s is unexported, so workers would see it empty: "+
				"task parameters are sent to workers as msgpack; export it, or %s", what, typeName, name, resourcesHint)
		}
	}
	spec, err := taskSpec(t, cfg)
	if err != nil {
		field := "its parameters"
		if fields {
			if name := unencodableField(v); name != "" {
				field = "field " + name
			}
		}
		return protocol.TaskSpec{}, fmt.Errorf("%s (type %s): %s cannot be encoded: %w: "+
			"task parameters are sent to workers as msgpack; %s", what, typeName, field, err, resourcesHint)
	}
	return spec, nil
}

// taskTypeName is t's name as its package writes it: Fetch, *Fetch.
func taskTypeName(t reflect.Type) string {
	prefix := ""
	for t.Kind() == reflect.Pointer {
		prefix += "*"
		t = t.Elem()
	}
	if t.Name() == "" {
		return prefix + t.String()
	}
	return prefix + t.Name()
}

// droppedField returns the name of the first field of struct v that msgpack
// leaves out although it holds a value: an unexported field, not tagged
// "-", that is not zero. Embedded structs are searched too (msgpack inlines
// their fields).
func droppedField(v reflect.Value) string {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("msgpack") == "-" {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous {
			for fv.Kind() == reflect.Pointer && !fv.IsNil() {
				fv = fv.Elem()
			}
			if fv.Kind() == reflect.Struct && !customEncoding(fv.Type()) {
				if name := droppedField(fv); name != "" {
					return f.Name + "." + name
				}
			}
			continue
		}
		if !f.IsExported() && !fv.IsZero() {
			return f.Name
		}
	}
	return ""
}

// unencodableField returns the name of the first exported field of struct
// v that msgpack cannot encode, or "".
func unencodableField(v reflect.Value) string {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("msgpack") == "-" {
			continue
		}
		if _, err := wirecodec.EncodeValue(v.Field(i).Interface()); err != nil {
			return f.Name
		}
	}
	return ""
}

var (
	customEncoderType   = reflect.TypeFor[msgpack.CustomEncoder]()
	marshalerType       = reflect.TypeFor[msgpack.Marshaler]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// customEncoding reports whether t (or *t) encodes itself, as msgpack
// asks before encoding a struct field by field: its fields say nothing
// about what reaches the workers.
func customEncoding(t reflect.Type) bool {
	for _, it := range []reflect.Type{customEncoderType, marshalerType, binaryMarshalerType, textMarshalerType} {
		if t.Implements(it) || reflect.PointerTo(t).Implements(it) {
			return true
		}
	}
	return false
}
