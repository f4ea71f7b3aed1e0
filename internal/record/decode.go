package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The API answers are lists of flat-ish objects whose nested values are stored as JSON text.
// Decoding them with encoding/json into maps, only to re-encode the nested parts, was most of
// the CPU of a sync. These functions validate and split the text in a single pass, accepting
// exactly what encoding/json accepts (the fuzz tests compare the two): top-level scalars become
// Go values (string, bool, json.Number, nil), nested objects and arrays stay json.RawMessage
// slices of the input. (Validating first with json.Valid cost as much as the split itself.)
// Strings without escapes share the input's bytes too, so callers never modify a text they
// decoded: the records keep it alive and read from it.

// DecodeArray decodes a JSON array of objects.
func DecodeArray(data []byte) ([]Record, error) {
	return decode(data, '[', "array", (*scanner).array)
}

// DecodeObject decodes one JSON object.
func DecodeObject(data []byte) (Record, error) {
	return decode(data, '{', "object", (*scanner).object)
}

// decode reads a whole text that is one value opened by open, read by parse.
func decode[T any](data []byte, open byte, what string, parse func(*scanner) (T, error)) (T, error) {
	var zero T
	s := scanner{b: data}
	s.ws()
	if !s.eat(open) {
		return zero, s.fail(errors.New("expected a JSON " + what))
	}
	v, err := parse(&s)
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return zero, s.fail(err)
	}
	return v, nil
}

// fail explains a rejected text: encoding/json's description when the text is not JSON at
// all, else what the scanner expected.
func (s *scanner) fail(err error) error {
	if !json.Valid(s.b) {
		var v any
		if jerr := json.Unmarshal(s.b, &v); jerr != nil {
			return jerr
		}
	}
	return err
}

// end checks that only whitespace follows the value.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

type scanner struct {
	b []byte
	i int
	// listKey names a top-level member decoded into list (DecodePage).
	listKey  string
	list     []Record
	listSeen bool
	depth    int // objects and arrays entered and not left
	// lastFields is the size of the last object read: the records of a list have about the
	// same fields, so it sizes the next one's map, where a fixed size grew for wide records
	// and was too big for narrow ones.
	lastFields int
}

var (
	errEOF    = errors.New("unexpected end of JSON input")
	errSyntax = errors.New("invalid JSON")
	errDepth  = errors.New("JSON nested too deeply")
)

// maxDepth is encoding/json's nesting limit, so both accept the same texts.
const maxDepth = 10000

// nest enters an object or array.
func (s *scanner) nest() error {
	s.depth++
	if s.depth > maxDepth {
		return errDepth
	}
	return nil
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// array reads a list of objects whose '[' is consumed.
func (s *scanner) array() ([]Record, error) {
	if err := s.nest(); err != nil {
		return nil, err
	}
	var out []Record
	s.ws()
	if s.eat(']') {
		s.depth--
		return out, nil
	}
	for {
		s.ws()
		if !s.eat('{') {
			return nil, fmt.Errorf("list element %d is not an object", len(out))
		}
		rec, err := s.object()
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
		s.ws()
		if s.eat(']') {
			s.depth--
			return out, nil
		}
		if !s.eat(',') {
			return nil, s.unexpected()
		}
	}
}

// unexpected is the error for the byte at the cursor.
func (s *scanner) unexpected() error {
	if s.i >= len(s.b) {
		return errEOF
	}
	return errSyntax
}

// object reads the members of an object whose '{' is consumed.
func (s *scanner) object() (Record, error) {
	if err := s.nest(); err != nil {
		return nil, err
	}
	rec := make(Record, max(s.lastFields, 8))
	s.ws()
	if s.eat('}') {
		s.depth--
		return rec, nil
	}
	for {
		s.ws()
		key, err := s.str()
		if err != nil {
			return nil, err
		}
		s.ws()
		if !s.eat(':') {
			return nil, s.unexpected()
		}
		s.ws()
		if key == s.listKey && s.listKey != "" && s.eat('[') {
			s.listKey = "" // only the top level
			if s.list, err = s.array(); err != nil {
				return nil, fmt.Errorf("%q: %w", key, err)
			}
			s.listSeen = true
		} else {
			v, err := s.value()
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", key, err)
			}
			rec[key] = v
		}
		s.ws()
		if s.eat('}') {
			s.depth--
			s.lastFields = len(rec)
			return rec, nil
		}
		if !s.eat(',') {
			return nil, s.unexpected()
		}
	}
}

// str reads a string token.
func (s *scanner) str() (string, error) {
	start := s.i
	escaped, ascii, err := s.skipString()
	if err != nil {
		return "", err
	}
	raw := s.b[start+1 : s.i-1]
	if !escaped && (ascii || utf8.Valid(raw)) {
		// The string shares the text's bytes, as nested values (json.RawMessage) do: a copy
		// of every key and value was 6 % of a Close sync's CPU, and GC work besides.
		return unsafe.String(unsafe.SliceData(raw), len(raw)), nil
	}
	return unquote(raw), nil
}

// unquote decodes the inside of a string token that skipString accepted, as encoding/json
// does: escapes resolved, invalid UTF-8 and unpaired surrogates replaced by U+FFFD.
func unquote(raw []byte) string {
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '\\':
			e := raw[i+1]
			i += 2
			switch e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(raw[i:])
				i += 4
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, hex4(raw[i+2:])); pair != utf8.RuneError {
							b = utf8.AppendRune(b, pair)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			default: // '"', '\\', '/'
				b = append(b, e)
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, r)
			} else {
				b = append(b, raw[i:i+size]...)
			}
			i += size
		}
	}
	return string(b)
}

// hex4 reads the four hex digits skipString checked.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// skipString moves past a string token, checking it, and reports whether it has escapes and
// whether its bytes are all ASCII (then, without escapes, they are valid UTF-8 as they are).
func (s *scanner) skipString() (escaped, ascii bool, err error) {
	if !s.eat('"') {
		return false, false, s.unexpected()
	}
	var high byte // every byte passed, ORed: its top bit says whether one was not ASCII
	for s.i < len(s.b) {
		// Pass plain bytes in a loop of locals: most of a page's bytes are in strings.
		b, i := s.b, s.i
		for i < len(b) {
			c := b[i]
			if stringStop[c] {
				break
			}
			high |= c
			i++
		}
		if s.i = i; i == len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i++
			return escaped, high < 0x80, nil
		case c < 0x20:
			return false, false, errors.New("control character in a string")
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return false, false, errEOF
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false, false, errEOF
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return false, false, errors.New("invalid \\u escape in a string")
					}
				}
				s.i += 6
			default:
				return false, false, errors.New("invalid escape in a string")
			}
		default:
			s.i++
		}
	}
	return false, false, errEOF
}

// stringStop marks the bytes a string token cannot simply go on past: its end, an escape and
// the control characters it may not hold.
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) value() (any, error) {
	if s.i >= len(s.b) {
		return nil, errEOF
	}
	switch c := s.b[s.i]; c {
	case '"':
		return s.str()
	case '{', '[':
		start := s.i
		if err := s.skipValue(); err != nil {
			return nil, err
		}
		return json.RawMessage(s.b[start:s.i:s.i]), nil
	case 't':
		return true, s.word("true")
	case 'f':
		return false, s.word("false")
	case 'n':
		return nil, s.word("null")
	default:
		start := s.i
		if err := s.skipNumber(); err != nil {
			return nil, fmt.Errorf("unexpected %q: %w", c, err)
		}
		return json.Number(s.b[start:s.i]), nil
	}
}

// skipNumber moves past a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) skipNumber() error {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return s.unexpected()
	}
	if s.eat('.') {
		if s.digits() == 0 {
			return s.unexpected()
		}
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return s.unexpected()
		}
	}
	return nil
}

// digits moves past decimal digits and counts them.
func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// word moves past the literal w.
func (s *scanner) word(w string) error {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return s.unexpected()
	}
	s.i += len(w)
	return nil
}

// skipValue moves past any value, checking it.
func (s *scanner) skipValue() error {
	if s.i >= len(s.b) {
		return errEOF
	}
	switch s.b[s.i] {
	case '{':
		return s.skipContainer('}', true)
	case '[':
		return s.skipContainer(']', false)
	case '"':
		_, _, err := s.skipString()
		return err
	case 't':
		return s.word("true")
	case 'f':
		return s.word("false")
	case 'n':
		return s.word("null")
	}
	return s.skipNumber()
}

// skipContainer moves past an object (members) or array, checking it.
func (s *scanner) skipContainer(closing byte, members bool) error {
	s.i++
	if err := s.nest(); err != nil {
		return err
	}
	s.ws()
	if s.eat(closing) {
		s.depth--
		return nil
	}
	for {
		s.ws()
		if members {
			if _, _, err := s.skipString(); err != nil {
				return err
			}
			s.ws()
			if !s.eat(':') {
				return s.unexpected()
			}
			s.ws()
		}
		if err := s.skipValue(); err != nil {
			return err
		}
		s.ws()
		if s.eat(closing) {
			s.depth--
			return nil
		}
		if !s.eat(',') {
			return s.unexpected()
		}
	}
}

// DecodePage decodes a list envelope such as Close's {"data": [...], "has_more": true}: the
// member named listKey is decoded as records, the other members as in a Record. The text is
// validated and scanned once.
func DecodePage(data []byte, listKey string) (fields Record, list []Record, err error) {
	s := scanner{b: data, listKey: listKey}
	s.ws()
	if !s.eat('{') {
		return nil, nil, s.fail(errors.New("expected a JSON object"))
	}
	fields, err = s.object()
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, nil, s.fail(err)
	}
	if !s.listSeen {
		return nil, nil, fmt.Errorf("the answer has no %q list", listKey)
	}
	return fields, s.list, nil
}

// Nested is v with a nested value (json.RawMessage, as the decoders leave objects and arrays)
// decoded into maps and slices, numbers as json.Number; other values are returned as they are.
func Nested(v any) (any, error) {
	raw, ok := v.(json.RawMessage)
	if !ok {
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", preview(v), err)
	}
	return out, nil
}

// NestedArray is Nested for a field that holds an array; nil when it holds none.
func NestedArray(v any) []any {
	n, _ := Nested(v)
	arr, _ := n.([]any)
	return arr
}

// Objects walks a JSON array of objects without building a map per object (Copper's
// custom_fields array, on every record of six tables): member gets each member's key (valid
// during the call only) and value as the decoders give values (nested objects and arrays as
// json.RawMessage), end is called after each object.
func Objects(data []byte, member func(key []byte, v any), end func()) error {
	s := &scanner{b: data}
	s.ws()
	if !s.eat('[') {
		return s.fail(errors.New("not an array"))
	}
	s.ws()
	if s.eat(']') {
		return s.end()
	}
	for {
		s.ws()
		if !s.eat('{') {
			return s.fail(errors.New("an array element is not an object"))
		}
		s.ws()
		if !s.eat('}') {
			for {
				s.ws()
				if s.i >= len(s.b) || s.b[s.i] != '"' {
					return s.fail(s.unexpected())
				}
				start := s.i
				escaped, _, err := s.skipString()
				if err != nil {
					return s.fail(err)
				}
				key := s.b[start+1 : s.i-1]
				if escaped {
					key = []byte(unquote(key))
				}
				s.ws()
				if !s.eat(':') {
					return s.fail(s.unexpected())
				}
				s.ws()
				v, err := s.value()
				if err != nil {
					return s.fail(err)
				}
				member(key, v)
				s.ws()
				if s.eat('}') {
					break
				}
				if !s.eat(',') {
					return s.fail(s.unexpected())
				}
			}
		}
		end()
		s.ws()
		if s.eat(']') {
			return s.end()
		}
		if !s.eat(',') {
			return s.fail(s.unexpected())
		}
	}
}
