package signature

import "testing"

// TestCredentialScope reads credentials from the right: keys holding '/',
// and every part missing, empty or of the wrong shape.
func TestCredentialScope(t *testing.T) {
	const terminator = "jdcloud2_request"
	for _, tc := range []struct {
		credential                  string
		key, scope, region, service string
		ok                          bool
	}{
		{"AK/20260301/cn-north-1/apigateway/jdcloud2_request", "AK", "20260301/cn-north-1/apigateway/jdcloud2_request", "cn-north-1", "apigateway", true},
		{"a/b/20260301/r/s/jdcloud2_request", "a/b", "20260301/r/s/jdcloud2_request", "r", "s", true},
		{"//20260301/r/s/jdcloud2_request", "/", "20260301/r/s/jdcloud2_request", "r", "s", true},
		{"/20260301/r/s/jdcloud2_request", "", "", "", "", false},    // no key
		{"20260301/r/s/jdcloud2_request", "", "", "", "", false},     // no key, no '/'
		{"AK/2026030/r/s/jdcloud2_request", "", "", "", "", false},   // short date
		{"AK/202603011/r/s/jdcloud2_request", "", "", "", "", false}, // long date
		{"AK/2026030x/r/s/jdcloud2_request", "", "", "", "", false},  // not digits
		{"AK/20260301//s/jdcloud2_request", "", "", "", "", false},   // no region
		{"AK/20260301/r//jdcloud2_request", "", "", "", "", false},   // no service
		{"AK/20260301/r/s/jdcloud3_request", "", "", "", "", false},  // other terminator
		{"AK/20260301/r/s/xjdcloud2_request", "", "", "", "", false}, // terminator not whole
		{"AK/20260301/r/s/jdcloud2_request/", "", "", "", "", false},
		{"AK/20260301/r/sjdcloud2_request", "", "", "", "", false},
		{"jdcloud2_request", "", "", "", "", false},
		{"", "", "", "", "", false},
	} {
		key, scope, region, service, ok := credentialScope(tc.credential, terminator)
		if key != tc.key || scope != tc.scope || region != tc.region || service != tc.service || ok != tc.ok {
			t.Errorf("credentialScope(%q) = %q %q %q %q %v, want %q %q %q %q %v", tc.credential,
				key, scope, region, service, ok, tc.key, tc.scope, tc.region, tc.service, tc.ok)
		}
	}
}

// TestKeyPrefix: the key chain's prefix, derived from the algorithm, is
// what each scheme's signers put before the secret.
func TestKeyPrefix(t *testing.T) {
	for scheme, want := range map[Scheme]string{JDCloud2: "JDCLOUD2", JDCloud3: "JDCLOUD3", SigV4: "AWS4"} {
		var a *scopedAuth
		switch impl := implOf(scheme).(type) {
		case *jdcloud:
			a = &impl.auth
		case *sigv4:
			a = &impl.auth
		}
		if a == nil || a.keyPrefix() != want {
			t.Errorf("%s: key prefix of %+v, want %q", scheme, a, want)
		}
	}
}
