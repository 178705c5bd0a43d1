"""Hot-word reload: the bus that announces list changes, and each ASR process's view of every
tenant's lists."""

from admin_api.hotreload.bus import HotwordBus, HotwordChange, InProcessBus, RedisBus
from admin_api.hotreload.tenant_hotwords import Applied, TenantHotwords

__all__ = ["Applied", "HotwordBus", "HotwordChange", "InProcessBus", "RedisBus", "TenantHotwords"]
