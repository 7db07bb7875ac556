// Package config loads a service's configuration from environment variables into one struct.
//
// Every field that is configured carries an `env` tag with the variable's name, an optional
// `default` tag and a `help` tag; nested structs are walked so services can share blocks such as
// the NATS or ops settings. Load validates types at start and names the bad variable in its
// error, then calls the struct's Validate method when it has one. Describe lists the variables so
// the README's configuration reference can be checked against the code.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Validator is implemented by configuration structs that check more than types.
type Validator interface {
	Validate() error
}

// LookupFunc finds a variable; os.LookupEnv is the usual one.
type LookupFunc func(name string) (string, bool)

// Var describes one configuration variable.
type Var struct {
	Name     string `json:"name"`
	Default  string `json:"default"`
	Help     string `json:"help"`
	Required bool   `json:"required"`
}

// FromEnv loads dst (a pointer to a struct) from the process environment.
func FromEnv(dst any) error { return Load(dst, os.LookupEnv) }

// Load fills dst (a pointer to a struct) from lookup. An unset variable takes its default; an
// empty value counts as set. A variable tagged `required:"true"` must be set and non-empty.
func Load(dst any, lookup LookupFunc) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a pointer to a struct, got %T", dst)
	}
	var errs []error
	walk(v.Elem(), func(f reflect.Value, sf reflect.StructField) {
		name := sf.Tag.Get("env")
		raw, ok := lookup(name)
		if !ok {
			raw = sf.Tag.Get("default")
		}
		if sf.Tag.Get("required") == "true" && strings.TrimSpace(raw) == "" {
			errs = append(errs, fmt.Errorf("%s: required but not set", name))
			return
		}
		if err := set(f, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if val, ok := dst.(Validator); ok {
		if err := val.Validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// Describe lists every variable of cfg (a struct or a pointer to one) in field order.
func Describe(cfg any) []Var {
	v := reflect.ValueOf(cfg)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var vars []Var
	walk(v, func(_ reflect.Value, sf reflect.StructField) {
		vars = append(vars, Var{
			Name:     sf.Tag.Get("env"),
			Default:  sf.Tag.Get("default"),
			Help:     sf.Tag.Get("help"),
			Required: sf.Tag.Get("required") == "true",
		})
	})
	return vars
}

func walk(v reflect.Value, fn func(reflect.Value, reflect.StructField)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		f := v.Field(i)
		if !sf.IsExported() {
			continue
		}
		if _, ok := sf.Tag.Lookup("env"); ok {
			fn(f, sf)
			continue
		}
		if f.Kind() == reflect.Struct {
			walk(f, fn)
		}
	}
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	urlType      = reflect.TypeFor[*url.URL]()
)

func set(f reflect.Value, raw string) error {
	switch {
	case f.Type() == durationType:
		if raw == "" {
			f.SetInt(0)
			return nil
		}
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration (like 30s or 5m): %q", raw)
		}
		if d < 0 {
			return fmt.Errorf("must not be negative: %q", raw)
		}
		f.SetInt(int64(d))
		return nil
	case f.Type() == urlType:
		if raw == "" {
			f.Set(reflect.Zero(urlType))
			return nil
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || u.Host == "" {
			// The value may carry a password: never echo it whole.
			return fmt.Errorf("not an absolute URL: %q", RedactURL(raw))
		}
		f.Set(reflect.ValueOf(u))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
	case reflect.Bool:
		if raw == "" {
			f.SetBool(false)
			return nil
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean (true or false): %q", raw)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		if raw == "" {
			f.SetInt(0)
			return nil
		}
		n, err := strconv.ParseInt(raw, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a whole number: %q", raw)
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		if raw == "" {
			f.SetUint(0)
			return nil
		}
		n, err := strconv.ParseUint(raw, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a whole number of zero or more: %q", raw)
		}
		f.SetUint(n)
	case reflect.Float64:
		if raw == "" {
			f.SetFloat(0)
			return nil
		}
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", raw)
		}
		f.SetFloat(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported field type %s", f.Type())
		}
		var items []string
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported field type %s", f.Type())
	}
	return nil
}
