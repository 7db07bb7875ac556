module github.com/koppel/koppel/services/scheduler

go 1.26
