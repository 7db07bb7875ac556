module github.com/koppel/koppel/services/koppelctl

go 1.26.0

require github.com/koppel/koppel/pkg v0.0.0

replace github.com/koppel/koppel/pkg => ../../pkg
