module github.com/koppel/koppel/services/invoice

go 1.26
