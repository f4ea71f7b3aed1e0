package catalog

import (
	"fmt"
	"strings"
)

// Cols builds a column list from compact "name:type" specs, so a source can declare a table in
// a few readable lines. Types: int, num, bool, ts, date, str, json. A type followed by "+raw"
// ("date:date+raw") also declares the string column "<name>_raw" that keeps the value as the
// API sent it (Column.Raw).
func Cols(specs ...string) []Column {
	out := make([]Column, 0, len(specs))
	for _, s := range specs {
		name, typ, ok := strings.Cut(s, ":")
		typ, raw := strings.CutSuffix(typ, "+raw")
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
		case "date":
			t = Date
		case "str":
			t = String
		case "json":
			t = JSON
		default:
			panic(fmt.Sprintf("catalog.Cols: %q has unknown type %q", s, typ))
		}
		if !raw {
			out = append(out, Column{Name: name, Type: t})
			continue
		}
		out = append(out, Column{Name: name, Type: t, Raw: name + "_raw"},
			Column{Name: name + "_raw", Type: String, Description: "`" + name + "` as the API sent it"})
	}
	return out
}

// Describe sets the description of the named column (for the docs: what a type decision
// means for that field), and returns cols.
func Describe(cols []Column, name, desc string) []Column {
	i := IndexOf(cols, name)
	if i < 0 {
		panic(fmt.Sprintf("catalog.Describe: no column %q", name))
	}
	cols[i].Description = desc
	return cols
}
