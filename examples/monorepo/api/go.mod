module github.com/acme-corp/platform/api

go 1.22
