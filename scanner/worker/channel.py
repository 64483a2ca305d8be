"""Length-prefixed messages (with file descriptors) over a Unix stream socket.

A message is a 4-byte big-endian length, a 1-byte kind and the payload. File descriptors travel
as SCM_RIGHTS ancillary data with the first bytes of their message, so the receiver gets the very
files the sender opened (no second open by name, no race with a file replaced in between). A
channel that receives descriptors reads each message exactly (`exact=True`), so that descriptors
are never attributed to the message before theirs; others read ahead in 1 MiB chunks.
"""
from __future__ import annotations

import array
import collections
import os
import select
import socket
import struct
import time

from ..errors import ChannelClosed, MessageTooLarge

_HEAD = struct.Struct(">I")
RECV_SIZE = 1 << 20
MAX_FDS = 64  # descriptors one message may carry (the kernel allows 253)


class Channel:
    """One end of a socket pair, with a receive buffer and the descriptors received so far."""

    def __init__(self, sock: socket.socket, max_message: int = 1 << 30, exact: bool = False) -> None:
        self.sock = sock
        self.max_message = max_message
        self.exact = exact
        self._buf = bytearray()
        self._fds: list[int] = []
        self._chunk = bytearray(RECV_SIZE)  # reused: a fresh 1 MiB buffer per read costs a page-faulting mmap
        self._view = memoryview(self._chunk)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        self._out: collections.deque[tuple[memoryview, list[int]]] = collections.deque()  # posted, not yet sent

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, kind: bytes, payload: bytes = b"", fds: list[int] | tuple[int, ...] = ()) -> None:
        """Send one message; `fds` are passed along (the sender keeps its own copies)."""
        data = _HEAD.pack(len(payload) + 1) + kind + payload
        if not fds:
            self.sock.sendall(data)
            return
        sent = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        if sent < len(data):
            self.sock.sendall(data[sent:])

    def post(self, kind: bytes, payload: bytes = b"", fds: list[int] | tuple[int, ...] = ()) -> None:
        """Queue one message and send as much of the queue as the socket takes now, never blocking
        (`flush` sends the rest once the socket is writable): a parent feeding several workers must
        not wait on one busy worker's full socket while another one is idle."""
        self._out.append((memoryview(_HEAD.pack(len(payload) + 1) + kind + payload), list(fds)))
        self.flush()

    @property
    def unsent(self) -> bool:
        """Whether posted messages are still (partly) waiting to be sent."""
        return bool(self._out)

    def flush(self) -> None:
        """Send posted messages as far as the socket takes them without blocking. A peer that is
        gone drops them (its end of file is what the next `recv` reports)."""
        while self._out:
            data, fds = self._out[0]
            try:
                if fds:
                    n = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))],
                                          socket.MSG_DONTWAIT)
                else:
                    n = self.sock.send(data, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._out.clear()
                return
            if n < len(data):
                self._out[0] = (data[n:], [])  # the descriptors went with the first byte
                return
            self._out.popleft()

    def ready(self) -> list[tuple[bytes, bytes, list[int]]]:
        """The messages complete after at most one read (call when poll says readable, or to
        collect what an earlier read buffered): never blocks on a readable socket."""
        messages = []
        while (message := self._take()) is not None:
            messages.append(message)
        if messages:
            return messages
        if self._poll.poll(0):
            self._fill()
        while (message := self._take()) is not None:
            messages.append(message)
        return messages

    def recv(self, timeout: float | None = None) -> tuple[bytes, bytes, list[int]] | None:
        """(kind, payload, fds) of the next message; None when `timeout` seconds passed first.

        Raises ChannelClosed at end of file and MessageTooLarge past `max_message` bytes.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._take()
            if message is not None:
                return message
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._poll.poll(max(0, int(left * 1000) + 1)):
                    return None
            self._fill()

    def _take(self) -> tuple[bytes, bytes, list[int]] | None:
        if len(self._buf) < _HEAD.size:
            return None
        (n,) = _HEAD.unpack_from(self._buf)
        if n < 1 or n > self.max_message:
            raise MessageTooLarge(f"message of {n} bytes")
        if len(self._buf) < _HEAD.size + n:
            return None
        kind = bytes(self._buf[4:5])
        payload = bytes(self._buf[5:4 + n])
        del self._buf[:4 + n]
        fds, self._fds = self._fds, []
        return kind, payload, fds

    def _fill(self) -> None:
        want = RECV_SIZE
        if self.exact:
            have = len(self._buf)
            want = _HEAD.size - have if have < _HEAD.size else _HEAD.size + _HEAD.unpack_from(self._buf)[0] - have
            want = max(1, min(want, RECV_SIZE))
        try:
            n, ancdata, _, _ = self.sock.recvmsg_into([self._view[:want]], socket.CMSG_SPACE(4 * MAX_FDS))
        except InterruptedError:
            return
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise ChannelClosed(str(exc)) from None
        for level, kind, body in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(body[:len(body) - len(body) % fds.itemsize])
                self._fds.extend(fds)
        if not n:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()
            raise ChannelClosed("end of file")
        self._buf += self._view[:n]

    def close(self) -> None:
        self._view.release()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        self.sock.close()

