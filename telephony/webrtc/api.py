"""`POST /v1/webrtc/offer`: a browser's SDP offer (one audio track, a `captions` data channel,
all ICE candidates gathered) in, the answer with the new call's id out."""

import logging
from typing import Literal

from aiortc import RTCSessionDescription
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from common.errors import ApiError, error_response
from service.quotas import tenant_of
from telephony.refusal import CallRefused
from telephony.session import CallSession
from telephony.state import TelephonyDep, authenticate
from telephony.webrtc.peer import FORMAT, LEG, WebrtcCall

logger = logging.getLogger(__name__)

router = APIRouter(tags=["calls"], dependencies=[Depends(authenticate)])

MAX_SDP = 64_000


class Offer(BaseModel):
    sdp: str = Field(max_length=MAX_SDP)
    type: Literal["offer"]
    language: str = Field("auto", max_length=40, description="auto, or a served language")
    hotwords: str | None = Field(
        None, description="Phrases for this call on top of the tenant's lists, one per line"
    )


class Answer(BaseModel):
    sdp: str
    type: Literal["answer"]
    call_id: str


@router.post("/v1/webrtc/offer", response_model=Answer)
async def webrtc_offer(offer: Offer, request: Request, state: TelephonyDep):
    """Start a call from a WebRTC peer. ICE is not trickled: send the offer once gathering is
    complete; the answer carries all of the server's candidates. The call's events (partial,
    final, endpoint, error, call_ended) come back as JSON text on the `captions` data channel;
    a `{"type": "end"}` message there hangs up after the last final."""
    tenant = tenant_of(request.state.principal)
    if tenant is None:
        raise ApiError(403, "tenant_required", "a call belongs to a tenant: use a tenant's key")
    language = state.rules.language(offer.language)
    extra = await state.rules.hotwords_in_thread(offer.hotwords)
    gateway = state.webrtc
    hub = state.hub
    pc = gateway.peer_connection()
    tracks: list = []
    channels: list = []
    pc.on("track", lambda track: tracks.append(track) if track.kind == "audio" else None)
    pc.on("datachannel", channels.append)
    session: CallSession | None = None
    call: WebrtcCall | None = None
    try:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type=offer.type))
        except Exception as exc:  # aiortc raises ValueError and friends on a bad offer
            logger.info("a WebRTC offer could not be used", exc_info=True)
            raise ApiError(
                400, "invalid_sdp", f"the SDP offer could not be used ({exc.__class__.__name__})"
            ) from exc
        if not tracks:
            raise ApiError(400, "invalid_sdp", "the SDP offer has no audio track to transcribe")
        try:
            session = await hub.open_call(tenant, "webrtc", language=language, hotwords=extra)
        except CallRefused as refused:
            response = error_response(refused.status, "call_refused", refused.reason)
            if refused.retry_after_s:
                response.headers["Retry-After"] = str(refused.retry_after_s)
            await pc.close()
            return response
        session.add_leg(LEG, FORMAT)
        call = WebrtcCall(gateway, pc, session)
        gateway.calls.add(call)
        for channel in channels:
            call.attach_channel(channel)
        pc.on("datachannel", call.attach_channel)  # usually opened only after the answer
        # aiortc gathers every candidate here: the answer is complete (non-trickle ICE).
        await pc.setLocalDescription(await pc.createAnswer())
        call.start(tracks[0])
    except BaseException:
        # Whatever failed, the call must not stay open holding the tenant's slot: once the
        # WebrtcCall exists it hangs up (and ends the call); before that, end it here.
        if call is not None:
            call.hang_up("the offer could not be answered")
        else:
            await pc.close()
            if session is not None:
                await session.end("the offer could not be answered")
        raise
    local = pc.localDescription
    return JSONResponse({"sdp": local.sdp, "type": local.type, "call_id": session.id})
