module github.com/koppel/koppel/services/sandbox

go 1.26
