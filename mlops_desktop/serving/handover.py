"""Which listener on a shared port gets new connections while one server process replaces another.

A restart binds the new process to the same port (SO_REUSEPORT) beside the running one. Left alone, the kernel
hashes each new connection to one of the two listeners. That is wrong twice: connections hashed to the new process
wait in its queue while its model loads (and are reset if it fails to start), and the connections queued on the old
listener when it closes at the end of its drain are reset (`ConnectionResetError` in a client mid-restart).

So the port's reuseport group carries a one-instruction classic BPF program (SO_ATTACH_REUSEPORT_CBPF, Linux ≥ 4.6,
no privileges) that names the listener by its place in the group:
- `hold(sock)` when a process binds: every new connection goes to the oldest listener, the server still running
  (or this one, when it is alone);
- `take_over(sock)` once it is ready: every new connection goes to the newest listener, this one. The old server
  then only drains the connections it has accepted or queued; when it closes, its queue is empty and the group's
  program picks an index that no longer exists, so the kernel falls back to its hash over the one listener left.

Where the option does not exist (not Linux) both are no-ops and the kernel's hash decides, as before.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct

log = logging.getLogger("mlops_desktop.serving")

SO_ATTACH_REUSEPORT_CBPF = 51  # <asm-generic/socket.h>; not exported by Python's socket module
BPF_RET_K = 0x06               # BPF_RET | BPF_K: return the constant k
OLDEST, NEWEST = 0, 1          # a restart has two listeners at most: [running, replacing]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


def steer(sock: socket.socket, index: int) -> bool:
    """Send the group's new connections to the listener at `index` (in the order they joined). False where the
    kernel has no such option; the hash then decides."""
    if not hasattr(socket, "SO_REUSEPORT") or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    program = (_SockFilter * 1)(_SockFilter(BPF_RET_K, 0, 0, index))
    fprog = struct.pack("@HP", 1, ctypes.addressof(program))  # struct sock_fprog {u16 len; sock_filter *filter}
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        log.debug("no reuseport steering on this kernel (%s): a restart relies on the kernel's hash", exc)
        return False
    return True


def hold(sock: socket.socket) -> bool:
    """A process that has just bound: leave new connections with the server already running."""
    return steer(sock, OLDEST)


def take_over(sock: socket.socket) -> bool:
    """A process that is ready: take every new connection from now on."""
    return steer(sock, NEWEST)
