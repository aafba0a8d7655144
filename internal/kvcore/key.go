package kvcore

import (
	"fmt"
	"strings"
)

// MaxKeyLen is the longest key accepted, in bytes, including any scope
// prefix.
const MaxKeyLen = 1024

// ValidateKey returns nil or an error wrapping [ErrInvalidKey] that says
// what is wrong with key.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	return ValidatePrefix(key, false)
}

// ValidatePrefix checks a key, or with trailingDot a key prefix, which may
// be empty or end with '.'.
func ValidatePrefix(s string, trailingDot bool) error {
	if len(s) > MaxKeyLen {
		return fmt.Errorf("%w: %q… is %d bytes, longer than %d", ErrInvalidKey, s[:32], len(s), MaxKeyLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '/' || c == '_' || c == '=' || c == '.') {
			return fmt.Errorf("%w: %q has %q (allowed: letters, digits, '-', '/', '_', '=', '.')", ErrInvalidKey, s, c)
		}
	}
	switch {
	case strings.HasPrefix(s, "."):
		return fmt.Errorf("%w: %q starts with '.'", ErrInvalidKey, s)
	case !trailingDot && strings.HasSuffix(s, "."):
		return fmt.Errorf("%w: %q ends with '.'", ErrInvalidKey, s)
	case strings.Contains(s, ".."):
		return fmt.Errorf("%w: %q has an empty token (\"..\")", ErrInvalidKey, s)
	}
	return nil
}
