package catalog

import (
	"fmt"
	"strings"
)

// Cols builds a column list from compact "name:type" specs, so a source can declare a table in
// a few readable lines. Types: int, num, bool, ts, str, json.
func Cols(specs ...string) []Column {
	out := make([]Column, 0, len(specs))
	for _, s := range specs {
		name, typ, ok := strings.Cut(s, ":")
		if !ok {
			panic(fmt.Sprintf("catalog.Cols: %q lacks a type", s))
		}
		var t Type
		switch typ {
		case "int":
			t = Integer
		case "num":
			t = Number
		case "bool":
			t = Boolean
		case "ts":
			t = Timestamp
		case "str":
			t = String
		case "json":
			t = JSON
		default:
			panic(fmt.Sprintf("catalog.Cols: %q has unknown type %q", s, typ))
		}
		out = append(out, Column{Name: name, Type: t})
	}
	return out
}
