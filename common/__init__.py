"""What every part shares, and nothing else: the API error type (`errors`), the request rules
every entry point applies (`rules`) and logging setup (`logs`).

It may import `asr_core` only. Keep this file empty of imports: the SIP user-agent processes
import `common.logs` and must start in a fraction of a second."""
