module github.com/koppel/koppel/services/relation

go 1.26
