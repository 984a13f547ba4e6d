module github.com/xmpp-iq/iq/adapter/goxmpp

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	github.com/xmpp-iq/iq v0.0.0
	github.com/xmppo/go-xmpp v0.4.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.61.0 // indirect
)
