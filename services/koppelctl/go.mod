module github.com/koppel/koppel/services/koppelctl

go 1.26
