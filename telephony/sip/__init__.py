"""SIP gateway: one public SIP port (`front`) before pjsua2 user-agent processes (`agent`,
`useragent`) that answer calls and feed their audio to `CallSession`s in the serve process
(see `gateway.SipGateway`).

Nothing is imported here: a user-agent process imports this package and must stay light."""
