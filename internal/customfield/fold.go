package customfield

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// letters are the Latin letters that decomposition does not reduce to ASCII.
var letters = map[rune]string{'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'ł': "l", 'đ': "d", 'ð': "d", 'þ': "th", 'ı': "i"}

// fold is a field name as column-name text: lower case, accents dropped, Latin ligatures
// spelled out, every run of other characters than letters and digits one "_", none at the ends.
func fold(name string) string {
	var b strings.Builder
	gap := false
	for _, r := range norm.NFC.String(strings.ToLower(name)) {
		if unicode.Is(unicode.Mn, r) {
			continue // a combining accent
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			gap = true
			continue
		}
		if gap && b.Len() > 0 {
			b.WriteByte('_')
		}
		gap = false
		b.WriteString(letter(r))
	}
	return b.String()
}

// letter spells a letter or digit in ASCII where it is a Latin one with accents ("é" → "e"),
// and keeps it otherwise: decomposing every letter would also strip the marks that are part of
// other scripts' letters (Japanese "ブ" is "フ" and a combining mark).
func letter(r rune) string {
	if s, ok := letters[r]; ok {
		return s
	}
	if r < 0x80 {
		return string(r)
	}
	d := norm.NFKD.String(string(r))
	base, rest := d[0], d[1:]
	if base >= 0x80 || !(base >= 'a' && base <= 'z' || base >= '0' && base <= '9') {
		return string(r)
	}
	for _, m := range rest {
		if !unicode.Is(unicode.Mn, m) {
			return string(r)
		}
	}
	return string(rune(base))
}
