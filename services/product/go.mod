module github.com/koppel/koppel/services/product

go 1.26
