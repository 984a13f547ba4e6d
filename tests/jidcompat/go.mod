module github.com/xmpp-iq/iq/tests/jidcompat

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	github.com/xmpp-iq/iq v0.0.0
	mellium.im/xmpp v0.23.0
)
