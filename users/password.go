package users

import (
	"crypto/rand"
	"fmt"
)

// passwordAlphabet avoids characters that need quoting in URIs, shells or
// connection strings; every password drawn from it passes CheckPassword.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewPassword returns n characters drawn uniformly from letters and digits
// with crypto/rand (32 characters carry about 190 bits). It panics only when
// crypto/rand fails.
func NewPassword(n int) string {
	b := make([]byte, n)
	max := byte(256 - 256%len(passwordAlphabet))
	for i := 0; i < n; {
		var one [1]byte
		if _, err := rand.Read(one[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand failed: %v", err))
		}
		if one[0] >= max {
			continue
		}
		b[i] = passwordAlphabet[int(one[0])%len(passwordAlphabet)]
		i++
	}
	return string(b)
}

// GeneratePassword returns a password for a user who left it empty:
// PasswordMaxLength (64) letters and digits (seed 003: "let the platform
// generate a password").
func GeneratePassword() string { return NewPassword(PasswordMaxLength) }
