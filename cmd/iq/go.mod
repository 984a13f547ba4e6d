module github.com/xmpp-iq/iq/cmd/iq

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	github.com/xmpp-iq/iq v0.0.0
	github.com/xmpp-iq/iq/adapter/mellium v0.0.0
	golang.org/x/sys v0.49.0
	mellium.im/sasl v0.3.2
	mellium.im/xmpp v0.23.0
)
