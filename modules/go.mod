module github.com/millrace/millrace/modules

go 1.26

require (
	github.com/millrace/millrace v0.0.0
	github.com/millrace/millrace/guest-sdk v0.0.0
)

replace (
	github.com/millrace/millrace => ../
	github.com/millrace/millrace/guest-sdk => ../guest-sdk
)
