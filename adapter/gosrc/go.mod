module github.com/xmpp-iq/iq/adapter/gosrc

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	github.com/xmpp-iq/iq v0.0.0
	go.uber.org/goleak v1.3.0
	gosrc.io/xmpp v0.5.1
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/google/uuid v1.1.1 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/xerrors v0.0.0-20190717185122-a985d3407aa7 // indirect
	nhooyr.io/websocket v1.6.5 // indirect
)
