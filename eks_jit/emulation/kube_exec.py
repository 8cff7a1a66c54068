"""``pods/exec`` and ``pods/attach`` of the emulated API server, over a websocket as kubectl 1.30 and
newer speak them (``v5.channel.k8s.io``, ``v4.channel.k8s.io``): each binary frame is one byte of
channel (0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4 resize, 255 a stream closed) then data.

No process runs. An exec of ``cat`` (and any attach) echoes stdin to stdout until stdin closes;
``sleep`` waits until the client leaves (a session a grant's end must cut); ``echo`` writes its
arguments; anything else writes one line naming the command. Then a ``Success`` Status, and close.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STATUS, CLOSE = 0, 1, 3, 255
SUCCESS = {"metadata": {}, "status": "Success"}


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def chosen_protocol(offered: list[str]) -> str:
    for protocol in offered:
        if protocol in PROTOCOLS:
            return protocol
    raise Refused(400, f"the emulated API server speaks {', '.join(PROTOCOLS)} only (offered: {offered or 'none'})")


async def session(ws: WebSocket, pod: dict[str, Any], subresource: str, command: list[str], protocol: str) -> None:
    """Accept ``ws`` and play the command (see the module's docstring) in ``pod``."""
    await ws.accept(subprotocol=protocol)
    name = pod["metadata"]["name"]
    try:
        if subresource == "attach" or command[:1] == ["cat"]:
            await _echo(ws)
        elif command[:1] == ["sleep"]:
            while True:
                await ws.receive_bytes()
        elif command[:1] == ["echo"]:
            await _out(ws, " ".join(command[1:]) + "\n")
        else:
            await _out(ws, f"emulated exec in pod {name}: {' '.join(command)}\n")
        await ws.send_bytes(bytes([STATUS]) + json.dumps(SUCCESS).encode())
        await ws.close(1000)
    except (WebSocketDisconnect, RuntimeError):  # the client (or the gateway) left
        return


async def _out(ws: WebSocket, text: str) -> None:
    await ws.send_bytes(bytes([STDOUT]) + text.encode())


async def _echo(ws: WebSocket) -> None:
    while True:
        frame = await ws.receive_bytes()
        if not frame:
            continue
        if frame[0] == STDIN:
            await ws.send_bytes(bytes([STDOUT]) + frame[1:])
        elif frame[0] == CLOSE and frame[1:2] == bytes([STDIN]):  # v5: stdin is at its end
            return
