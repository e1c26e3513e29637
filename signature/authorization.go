package signature

import (
	"strings"
	"time"
)

// Parsing shared by the schemes whose Authorization header reads
// `<ALGORITHM> Credential=<key>/<scope>, SignedHeaders=<h1;h2>, Signature=<hex>`
// (JD Cloud's and AWS's).

// authorization returns the first Authorization value of h that starts
// with algorithm and a space, without it.
func authorization(values []string, algorithm string) (string, bool) {
	for _, v := range values {
		v = trimSpace(v)
		if len(v) > len(algorithm) && v[len(algorithm)] == ' ' && v[:len(algorithm)] == algorithm {
			return v[len(algorithm)+1:], true
		}
	}
	return "", false
}

// authParams reads the comma-separated name=value items of an
// Authorization value; unknown items are ignored.
func authParams(params string) (credential, signedHeaders, signature string) {
	for params != "" {
		var item string
		item, params, _ = strings.Cut(params, ",")
		name, value, _ := strings.Cut(trimSpace(item), "=")
		switch name {
		case "Credential":
			credential = value
		case "SignedHeaders":
			signedHeaders = value
		case "Signature":
			signature = value
		}
	}
	return credential, signedHeaders, signature
}

// credentialScope splits `<key>/<YYYYMMDD>/<region>/<service>/<terminator>`.
// The key may itself hold '/', so the scope is read from the right.
func credentialScope(credential, terminator string) (key, scope, region, service string, ok bool) {
	rest := credential
	var parts [4]string
	for i := len(parts) - 1; i >= 0; i-- {
		j := strings.LastIndexByte(rest, '/')
		if j < 0 {
			return "", "", "", "", false
		}
		parts[i], rest = rest[j+1:], rest[:j]
	}
	date := parts[0]
	if rest == "" || len(date) != 8 || !allDigits(date) || parts[1] == "" || parts[2] == "" || parts[3] != terminator {
		return "", "", "", "", false
	}
	return rest, credential[len(rest)+1:], parts[1], parts[2], true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseCompactTime reads YYYYMMDDTHHMMSSZ (UTC) without allocating.
func parseCompactTime(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' || !allDigits(s[:8]) || !allDigits(s[9:15]) {
		return time.Time{}, false
	}
	n := func(i, j int) int {
		v := 0
		for ; i < j; i++ {
			v = v*10 + int(s[i]-'0')
		}
		return v
	}
	year, month, day := n(0, 4), n(4, 6), n(6, 8)
	hour, minute, second := n(9, 11), n(11, 13), n(13, 15)
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	if t.Day() != day { // 31 April and the like
		return time.Time{}, false
	}
	return t, true
}

// listHas reports whether the ';'-separated list holds name. Signers
// write the list in lower case.
func listHas(list, name string) bool {
	for {
		i := strings.Index(list, name)
		if i < 0 {
			return false
		}
		end := i + len(name)
		if (i == 0 || list[i-1] == ';') && (end == len(list) || list[end] == ';') {
			return true
		}
		list = list[end:]
	}
}

// decodeHex decodes a hex signature into dst; it reports false unless s is
// exactly 2*len(dst) hex digits.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}
