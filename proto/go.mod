module github.com/koppel/koppel/proto

go 1.26
