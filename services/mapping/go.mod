module github.com/koppel/koppel/services/mapping

go 1.26
