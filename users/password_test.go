package users

import (
	"regexp"
	"testing"
)

func TestNewPasswordUsesTheAlphabet(t *testing.T) {
	seen := map[string]bool{}
	shape := regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	for i := 0; i < 100; i++ {
		s := NewPassword(32)
		if !shape.MatchString(s) {
			t.Fatalf("password %q has other characters", s)
		}
		if seen[s] {
			t.Fatal("repeated password")
		}
		seen[s] = true
	}
}

func TestGeneratedPasswordsPassTheRules(t *testing.T) {
	pw := GeneratePassword()
	if len(pw) != PasswordMaxLength || CheckPassword(pw) != nil || pw == GeneratePassword() {
		t.Fatalf("generated password of %d characters, rules: %v", len(pw), CheckPassword(pw))
	}
}
