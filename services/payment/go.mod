module github.com/koppel/koppel/services/payment

go 1.26
