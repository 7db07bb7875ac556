module github.com/koppel/koppel/services/relation

go 1.26

require (
	github.com/koppel/koppel/pkg v0.0.0
	github.com/koppel/koppel/proto v0.0.0
)

replace github.com/koppel/koppel/proto => ../../proto

replace github.com/koppel/koppel/pkg => ../../pkg
