package catalog

// JSONSchema renders the stream's columns as a JSON Schema object (draft 2020-12), the form
// Singer and Airbyte catalogs use. Every column is nullable: the APIs send null for almost anything.
func (s Stream) JSONSchema() map[string]any {
	props := make(map[string]any, len(s.Columns))
	for _, c := range s.Columns {
		props[c.Name] = typeSchema(c.Type)
	}
	return map[string]any{
		"type":       "object",
		"properties": props,
		// Fields beyond the declared ones are schema drift and are kept, so the schema stays open.
		"additionalProperties": true,
	}
}

func typeSchema(t Type) map[string]any {
	switch t {
	case Integer:
		return map[string]any{"type": []string{"integer", "null"}}
	case Number:
		return map[string]any{"type": []string{"number", "null"}}
	case Boolean:
		return map[string]any{"type": []string{"boolean", "null"}}
	case Timestamp:
		// The APIs send ISO 8601 strings (Close) or unix seconds (Copper); both are instants.
		return map[string]any{"type": []string{"string", "integer", "null"}, "format": "date-time"}
	case Date:
		// The APIs send YYYY-MM-DD or M/D/YYYY; crmsync stores the day.
		return map[string]any{"type": []string{"string", "null"}, "format": "date"}
	case JSON:
		return map[string]any{"type": JSONTypes}
	default:
		return map[string]any{"type": []string{"string", "null"}}
	}
}

// JSONTypes are the JSON Schema types of a JSON column: any JSON value (objects and arrays
// mostly; a field that is sometimes an object is sometimes a string).
var JSONTypes = []string{"object", "array", "string", "number", "boolean", "null"}
