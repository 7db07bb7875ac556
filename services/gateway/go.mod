module github.com/koppel/koppel/services/gateway

go 1.26
