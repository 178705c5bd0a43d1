"""A pjsua2 object caught in a reference cycle is freed by Python's cycle collector, on
whichever thread happens to collect; a thread unknown to pjlib then aborts the whole process
(the SIP gateway's intermittent crash). The user agent keeps every ended call until it can
free it on its own thread. Each case runs in a process of its own, the real pjsua2
library initialised with its conference bridge."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("pjsua2") is None:
    pytest.skip("pjsua2 not installed (wheels stop at Python 3.12)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """
import gc, sys, threading
import pjsua2 as pj
from telephony.sip.config import AgentConfig
from telephony.sip.ua_thread import UserAgent

gc.disable()  # only the explicit collection below, on another thread
endpoint = pj.Endpoint()
endpoint.libCreate()
config = pj.EpConfig()
config.uaConfig.threadCnt = 0
config.uaConfig.mainThreadOnly = True
config.logConfig.consoleLevel = 0
endpoint.libInit(config)
endpoint.audDevManager().setNullDev()
transport = pj.TransportConfig()
transport.boundAddress = "127.0.0.1"  # port 0: any free one
endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
endpoint.libStart()

agent = UserAgent(AgentConfig(), bridge=None)
account = pj.Account()  # like a call, its destructor calls into pjsua
account_config = pj.AccountConfig()
account_config.idUri = "sip:test@127.0.0.1"
account.create(account_config)
if sys.argv[1] == "dropped":
    agent._dropped.append(account)  # as `disconnected` does with an ended call
cycle = [account]
cycle.append(cycle)  # an exception's traceback holding a frame that holds the call, say
del account, cycle

collector = threading.Thread(target=gc.collect, name="db-thread")
collector.start()
collector.join()
print("still held:", len(agent._dropped))
agent._free_dropped()  # the user agent's next tick, on its own thread
print("still held:", len(agent._dropped))
endpoint.libDestroy()
print("clean exit")
"""


def run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCENARIO, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_hazard_an_object_freed_by_another_thread_aborts_the_process():
    result = run("unmanaged")
    assert result.returncode != 0
    assert "unknown/external thread" in result.stderr


def test_ended_calls_are_freed_on_the_user_agents_thread():
    result = run("dropped")
    assert result.returncode == 0, result.stderr[-2000:]
    ours = [line for line in result.stdout.splitlines() if line.startswith(("still", "clean"))]
    assert ours == ["still held: 1", "still held: 0", "clean exit"]
