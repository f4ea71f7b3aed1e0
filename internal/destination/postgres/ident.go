package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN − 1) in bytes; longer names are
// silently truncated by the server, which could make two columns collide.
const MaxIdentLen = 63

// hashLen is the number of hex digits of SHA-256 appended to a shortened name.
const hashLen = 8

// Ident maps a logical name (stream, column, schema) to the PostgreSQL identifier that stores
// it. Names of at most 63 bytes that PostgreSQL can store are kept as they are (they are
// always quoted, so case, spaces, dots and quotes survive). Other names — longer than 63
// bytes, empty, or holding a NUL byte or invalid UTF-8 — become their first bytes (cut at a
// character boundary, NUL and invalid bytes removed) + "_" + the first 8 hex digits of the
// SHA-256 of the whole name, 63 bytes at most. See the package documentation.
func Ident(name string) string {
	if name != "" && len(name) <= MaxIdentLen && utf8.ValidString(name) && strings.IndexByte(name, 0) < 0 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:])[:hashLen]
	clean := strings.ReplaceAll(strings.ToValidUTF8(name, ""), "\x00", "")
	cut := min(len(clean), MaxIdentLen-len(suffix))
	for cut > 0 && cut < len(clean) && !utf8.RuneStart(clean[cut]) {
		cut--
	}
	return clean[:cut] + suffix
}

// quote quotes an identifier that already went through Ident.
func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// qident is the quoted identifier of a logical name.
func qident(name string) string { return quote(Ident(name)) }

func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = qident(n)
	}
	return strings.Join(q, ", ")
}

var (
	kvQuotedPassword = regexp.MustCompile(`password\s*=\s*'(?:[^'\\]|\\.)*'`)
	kvPlainPassword  = regexp.MustCompile(`password\s*=\s*[^'\s][^\s]*`)
)

// Redact returns a connection string (URL or keyword/value) with the password removed, for
// display in logs and reports.
func Redact(connString string) string {
	if isURL(connString) {
		if u, err := url.Parse(connString); err == nil {
			if u.User != nil {
				u.User = url.User(u.User.Username())
			}
			q := u.Query()
			if q.Has("password") {
				q.Del("password")
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
		// Unparseable URL: drop everything between the scheme and the last '@'.
		scheme, rest, _ := strings.Cut(connString, "://")
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			user, _, _ := strings.Cut(rest[:i], ":")
			rest = user + rest[i:]
		}
		return scheme + "://" + rest
	}
	s := kvQuotedPassword.ReplaceAllString(connString, "password=xxxxx")
	return kvPlainPassword.ReplaceAllString(s, "password=xxxxx")
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// secrets returns the password spellings that must never appear in an error: as written in the
// connection string and URL-decoded. Best effort on malformed input.
func secrets(connString string) []string {
	var pw string
	if isURL(connString) {
		_, rest, _ := strings.Cut(connString, "://")
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			if _, p, ok := strings.Cut(rest[:i], ":"); ok {
				pw = p
			}
		}
		if u, err := url.Parse(connString); err == nil {
			if p := u.Query().Get("password"); p != "" {
				return appendSecret(appendSecret(nil, pw), p)
			}
		}
	} else if m := kvQuotedPassword.FindString(connString); m != "" {
		pw = strings.TrimSuffix(m[strings.Index(m, "'")+1:], "'")
	} else if m := kvPlainPassword.FindString(connString); m != "" {
		_, pw, _ = strings.Cut(m, "=")
		pw = strings.TrimSpace(pw)
	}
	return appendSecret(nil, pw)
}

func appendSecret(out []string, pw string) []string {
	if pw == "" {
		return out
	}
	out = append(out, pw)
	if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
		out = append(out, dec)
	}
	return out
}

// redactedError hides passwords in the message of an error that may quote the connection
// string (pgx's parse errors include the underlying url.Parse error verbatim). Unwrap keeps
// errors.Is working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// urlPassword is the password field of a URL quoted in a message ("scheme://user:" … "@"),
// up to the last '@' of the word, as Redact reads an unparseable URL.
var urlPassword = regexp.MustCompile(`(://[^/?#@\s:]*:)\S*@`)

// redactErr scrubs passwords from err's message: the password field of any URL and of any
// keyword/value string in it, and the password's spellings where they stand as a whole word.
// A password is never replaced inside a longer word: with the password "a", "connect: failed"
// must stay readable, and garbling it to "connect: fxxxxxiled" would point at the password.
func redactErr(err error, secrets []string) error {
	if err == nil {
		return err
	}
	msg := urlPassword.ReplaceAllString(err.Error(), "${1}xxxxx@")
	msg = kvQuotedPassword.ReplaceAllString(msg, "password=xxxxx")
	msg = kvPlainPassword.ReplaceAllString(msg, "password=xxxxx")
	for _, s := range secrets {
		msg = replaceWord(msg, s, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// replaceWord replaces the occurrences of word in s that no letter, digit or '_' adjoins.
func replaceWord(s, word, with string) string {
	if word == "" {
		return s
	}
	var b strings.Builder
	done := 0 // s[:done] is written
	for from := 0; ; {
		i := strings.Index(s[from:], word)
		if i < 0 {
			break
		}
		i += from
		end := i + len(word)
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if (i == 0 || !isWordRune(before)) && (end == len(s) || !isWordRune(after)) {
			b.WriteString(s[done:i])
			b.WriteString(with)
			done, from = end, end
			continue
		}
		from = i + 1
	}
	b.WriteString(s[done:])
	return b.String()
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// RedactError scrubs the password of connString from err's message (see redactErr): for
// errors of connections crmsync opens outside a destination (the fleet's queue).
func RedactError(err error, connString string) error {
	return redactErr(err, secrets(connString))
}
