module github.com/koppel/koppel/services/devstack

go 1.26
