module github.com/sysinfo/sysinfo

go 1.22
