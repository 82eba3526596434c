module github.com/millrace/millrace/guest-sdk

go 1.26

require github.com/millrace/millrace v0.0.0

replace github.com/millrace/millrace => ../
