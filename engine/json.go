package engine

import (
	"bytes"
	"errors"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of the strict JSON parser. They bound the work one token can cause.
const (
	maxJSONDepth   = 32  // nesting of objects and arrays
	maxJSONMembers = 512 // object members in one document, all levels
	maxTopMembers  = 128 // members of the top-level object
)

// Kinds of JSON values.
const (
	kindString byte = 's'
	kindNumber byte = 'n'
	kindObject byte = 'o'
	kindArray  byte = 'a'
	kindTrue   byte = 't'
	kindFalse  byte = 'f'
	kindNull   byte = 'z'
)

// member is one member of the top-level object, as offsets into the
// document, so that a member table can be copied along with its document.
type member struct {
	nameStart, nameEnd int32 // raw name, without quotes
	valStart, valEnd   int32 // raw value; for strings, without quotes
	kind               byte
	nameEsc, valEsc    bool // contains backslash escapes
}

// nameRef is an unescaped object member name, for duplicate detection.
type nameRef []byte

// jsonParser is a strict RFC 8259 parser that validates a document (UTF-8,
// grammar, depth, no duplicate member names at any level after unescaping)
// and records the members of its top-level object. Reusable; not safe for
// concurrent use.
type jsonParser struct {
	doc     []byte
	pos     int
	depth   int
	count   int
	top     []member
	names   []nameRef
	scratch []byte // unescaped names; never reallocated during a parse
}

var errJSON = errors.New("invalid JSON")

// parse validates doc as one JSON object (surrounding JSON white space
// allowed) and fills p.top. top is reset first.
func (p *jsonParser) parse(doc []byte) error {
	p.doc, p.pos, p.depth, p.count = doc, 0, 0, 0
	p.top = p.top[:0]
	p.names = p.names[:0]
	if cap(p.scratch) < len(doc) {
		p.scratch = make([]byte, 0, len(doc)+64)
	}
	p.scratch = p.scratch[:0]
	p.skipWS()
	if p.pos >= len(doc) || doc[p.pos] != '{' {
		return errJSON
	}
	if err := p.object(true); err != nil {
		return err
	}
	p.skipWS()
	if p.pos != len(doc) {
		return errJSON
	}
	return nil
}

func (p *jsonParser) skipWS() {
	for p.pos < len(p.doc) {
		switch p.doc[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value() (kind byte, err error) {
	if p.pos >= len(p.doc) {
		return 0, errJSON
	}
	switch c := p.doc[p.pos]; {
	case c == '{':
		return kindObject, p.object(false)
	case c == '[':
		return kindArray, p.array()
	case c == '"':
		_, err := p.str()
		return kindString, err
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber, p.number()
	case c == 't':
		return kindTrue, p.literal("true")
	case c == 'f':
		return kindFalse, p.literal("false")
	case c == 'n':
		return kindNull, p.literal("null")
	}
	return 0, errJSON
}

func (p *jsonParser) literal(lit string) error {
	if len(p.doc)-p.pos < len(lit) || string(p.doc[p.pos:p.pos+len(lit)]) != lit {
		return errJSON
	}
	p.pos += len(lit)
	return nil
}

func (p *jsonParser) object(top bool) error {
	p.depth++
	if p.depth > maxJSONDepth {
		return errJSON
	}
	p.pos++ // '{'
	base := len(p.names)
	p.skipWS()
	if p.pos < len(p.doc) && p.doc[p.pos] == '}' {
		p.pos++
		p.depth--
		return nil
	}
	for {
		p.skipWS()
		if p.pos >= len(p.doc) || p.doc[p.pos] != '"' {
			return errJSON
		}
		nameStart := p.pos + 1
		esc, err := p.str()
		if err != nil {
			return err
		}
		nameEnd := p.pos - 1
		p.count++
		if p.count > maxJSONMembers {
			return errJSON
		}
		name := p.doc[nameStart:nameEnd]
		if esc {
			start := len(p.scratch)
			p.scratch = appendUnescaped(p.scratch, name)
			name = p.scratch[start:len(p.scratch):len(p.scratch)]
		}
		p.names = append(p.names, name)
		p.skipWS()
		if p.pos >= len(p.doc) || p.doc[p.pos] != ':' {
			return errJSON
		}
		p.pos++
		p.skipWS()
		valStart := p.pos
		kind, err := p.value()
		if err != nil {
			return err
		}
		if top {
			if len(p.top) >= maxTopMembers {
				return errJSON
			}
			m := member{
				nameStart: int32(nameStart), nameEnd: int32(nameEnd), nameEsc: esc,
				valStart: int32(valStart), valEnd: int32(p.pos), kind: kind,
			}
			if kind == kindString {
				m.valStart++
				m.valEnd--
				m.valEsc = bytes.IndexByte(p.doc[m.valStart:m.valEnd], '\\') >= 0
			}
			p.top = append(p.top, m)
		}
		p.skipWS()
		if p.pos >= len(p.doc) {
			return errJSON
		}
		if p.doc[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.doc[p.pos] != '}' {
			return errJSON
		}
		p.pos++
		break
	}
	if hasDuplicate(p.names[base:]) {
		return errJSON
	}
	p.names = p.names[:base]
	p.depth--
	return nil
}

// hasDuplicate reports whether two names are equal. Small objects are
// compared pairwise; larger ones are sorted in place (the slice is scratch).
func hasDuplicate(names []nameRef) bool {
	if len(names) <= 16 {
		for i := 1; i < len(names); i++ {
			for j := 0; j < i; j++ {
				if bytes.Equal(names[i], names[j]) {
					return true
				}
			}
		}
		return false
	}
	slices.SortFunc(names, func(a, b nameRef) int { return bytes.Compare(a, b) })
	for i := 1; i < len(names); i++ {
		if bytes.Equal(names[i], names[i-1]) {
			return true
		}
	}
	return false
}

func (p *jsonParser) array() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return errJSON
	}
	p.pos++ // '['
	p.skipWS()
	if p.pos < len(p.doc) && p.doc[p.pos] == ']' {
		p.pos++
		p.depth--
		return nil
	}
	for {
		p.skipWS()
		if _, err := p.value(); err != nil {
			return err
		}
		p.skipWS()
		if p.pos >= len(p.doc) {
			return errJSON
		}
		if p.doc[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.doc[p.pos] != ']' {
			return errJSON
		}
		p.pos++
		p.depth--
		return nil
	}
}

// str scans a string starting at the opening quote; it leaves pos after the
// closing quote and reports whether the string contains escapes. It checks
// UTF-8, control characters, escape syntax and surrogate pairing.
func (p *jsonParser) str() (esc bool, err error) {
	d := p.doc
	i := p.pos + 1
	for {
		if i >= len(d) {
			return false, errJSON
		}
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return esc, nil
		case c < 0x20:
			return false, errJSON
		case c == '\\':
			esc = true
			if i+1 >= len(d) {
				return false, errJSON
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(d, i+2)
				if !ok {
					return false, errJSON
				}
				i += 6
				if utf16.IsSurrogate(rune(r)) {
					if r >= 0xDC00 || i+1 >= len(d) || d[i] != '\\' || d[i+1] != 'u' {
						return false, errJSON
					}
					r2, ok := hex4(d, i+2)
					if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
						return false, errJSON
					}
					i += 6
				}
			default:
				return false, errJSON
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size <= 1 {
				return false, errJSON
			}
			i += size
		}
	}
}

func hex4(d []byte, i int) (uint16, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r uint16
	for _, c := range d[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= uint16(c - '0')
		case c >= 'a' && c <= 'f':
			r |= uint16(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= uint16(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number validates the RFC 8259 number grammar.
func (p *jsonParser) number() error {
	d, i := p.doc, p.pos
	if d[i] == '-' {
		i++
	}
	if i >= len(d) {
		return errJSON
	}
	if d[i] == '0' {
		i++
	} else if d[i] >= '1' && d[i] <= '9' {
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	} else {
		return errJSON
	}
	if i < len(d) && d[i] == '.' {
		i++
		s := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == s {
			return errJSON
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		s := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == s {
			return errJSON
		}
	}
	p.pos = i
	return nil
}

// appendUnescaped appends the unescaped form of a string body that str has
// already validated.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s, i+2)
			if utf16.IsSurrogate(rune(r)) {
				r2, _ := hex4(s, i+8)
				dst = utf8.AppendRune(dst, utf16.DecodeRune(rune(r), rune(r2)))
				i += 12
				continue
			}
			dst = utf8.AppendRune(dst, rune(r))
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// find returns the top-level member named name (compared after unescaping).
func findMember(doc []byte, top []member, name string) (member, bool) {
	for _, m := range top {
		if !m.nameEsc {
			if string(doc[m.nameStart:m.nameEnd]) == name {
				return m, true
			}
			continue
		}
		var buf [64]byte
		if int(m.nameEnd-m.nameStart) <= len(buf) {
			if string(appendUnescaped(buf[:0], doc[m.nameStart:m.nameEnd])) == name {
				return m, true
			}
		} else if string(appendUnescaped(nil, doc[m.nameStart:m.nameEnd])) == name {
			return m, true
		}
	}
	return member{}, false
}

// stringValue returns the unescaped value of a string member, using buf for
// escaped values.
func stringValue(doc []byte, m member, buf []byte) []byte {
	v := doc[m.valStart:m.valEnd]
	if !m.valEsc {
		return v
	}
	return appendUnescaped(buf[:0], v)
}

// ValidateJSONObject reports whether data is one strict JSON object under the
// same rules the verifier applies to token headers and payloads.
func ValidateJSONObject(data []byte) error {
	var p jsonParser
	if err := p.parse(data); err != nil {
		return errors.New("invalid JSON, duplicate member name, or nesting too deep")
	}
	return nil
}
