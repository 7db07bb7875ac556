package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type Shared struct {
	NATSURL string `env:"T_NATS_URL" default:"nats://127.0.0.1:4222" help:"NATS server"`
}

type sample struct {
	Shared
	Name    string        `env:"T_NAME" required:"true" help:"name"`
	Port    int           `env:"T_PORT" default:"8080"`
	Debug   bool          `env:"T_DEBUG" default:"false"`
	Timeout time.Duration `env:"T_TIMEOUT" default:"5s"`
	Tags    []string      `env:"T_TAGS" default:"a, b,,c"`
	Ratio   float64       `env:"T_RATIO" default:"0.5"`
	Seed    uint64        `env:"T_SEED" default:"7"`
	NoTag   string
}

func (s *sample) Validate() error {
	if s.Port == 1 {
		return errors.New("T_PORT: must not be 1")
	}
	return nil
}

func env(m map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadDefaultsAndOverrides(t *testing.T) {
	var s sample
	if err := Load(&s, env(map[string]string{"T_NAME": "x", "T_PORT": "9000"})); err != nil {
		t.Fatal(err)
	}
	if s.NATSURL != "nats://127.0.0.1:4222" || s.Name != "x" || s.Port != 9000 || s.Debug ||
		s.Timeout != 5*time.Second || strings.Join(s.Tags, "|") != "a|b|c" || s.Ratio != 0.5 || s.Seed != 7 {
		t.Fatalf("unexpected config: %+v", s)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	var s sample
	err := Load(&s, env(map[string]string{"T_PORT": "eighty", "T_TIMEOUT": "soon", "T_DEBUG": "yes please", "T_SEED": "-1"}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"T_NAME", "T_PORT", "T_TIMEOUT", "T_DEBUG", "T_SEED"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLoadRunsValidate(t *testing.T) {
	var s sample
	err := Load(&s, env(map[string]string{"T_NAME": "x", "T_PORT": "1"}))
	if err == nil || !strings.Contains(err.Error(), "must not be 1") {
		t.Fatalf("want the Validate error, got %v", err)
	}
}

func TestLoadRejectsNegativeDuration(t *testing.T) {
	var s sample
	if err := Load(&s, env(map[string]string{"T_NAME": "x", "T_TIMEOUT": "-1s"})); err == nil {
		t.Fatal("want an error for a negative duration")
	}
}

func TestDescribeListsNestedVariables(t *testing.T) {
	vars := Describe(sample{})
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, ","); got != "T_NATS_URL,T_NAME,T_PORT,T_DEBUG,T_TIMEOUT,T_TAGS,T_RATIO,T_SEED" {
		t.Fatalf("Describe = %s", got)
	}
	if !vars[1].Required || vars[0].Default != "nats://127.0.0.1:4222" {
		t.Fatalf("Describe lost tags: %+v", vars[:2])
	}
}
