// The message values and the transport protocol live in FlowTransport, which has no C in
// it; whoever uses the AMQP transport uses them too.
@_exported import FlowTransport
