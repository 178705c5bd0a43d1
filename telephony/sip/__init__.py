"""SIP gateway: one public SIP port (`front`) before pjsua2 user-agent processes that answer
calls and feed their audio to `CallSession`s in the serve process (see `gateway.SipGateway`).
`ua_pool` starts and supervises the processes; each runs `ua_process`, whose `ua_thread` owns
pjsua2.

Nothing is imported here: a user-agent process imports this package and must stay light."""
