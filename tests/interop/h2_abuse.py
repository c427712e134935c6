#!/usr/bin/env python3
"""HTTP/2 abuse against a running `hearken serve` (R-SEC-2, R-KA-1, R-KA-2), with the Python
`h2` package speaking raw frames. Each check opens its own connection, measures the server
(RSS and CPU from /proc/PID), then checks that the server still answers a health check.

    python3 tests/interop/h2_abuse.py --addr 127.0.0.1:50051 --pid PID \
        [--keepalive-deadline 5]

Checks:
- rapid reset (CVE-2023-44487): HEADERS + RST_STREAM x 10 000 on one connection -> GOAWAY
  (hyper's pending-accept-reset limit is set to 20) and bounded RSS/CPU;
- CONTINUATION flood: a HEADERS frame without END_HEADERS followed by CONTINUATION frames
  far beyond the 16 KiB header-list limit -> the connection is closed;
- stream limit: SETTINGS advertise 1 000 concurrent streams; a client that ignores it and
  opens a 1 001st stream gets that stream refused (RST_STREAM REFUSED_STREAM or GOAWAY);
- ping flood: a PING every millisecond for 5 s -> measured server CPU; the connection is
  either answered (hyper answers pings cheaply) or closed; the server stays healthy;
- black-holed client (R-KA-1): a client that opens a stream and then never answers the
  server's keepalive PINGs is disconnected within --keepalive-deadline seconds.
- refusals (R-SEC-5, with --refusals, against a server that refuses all but the first stream
  open: `--stream-open-rate-by-peer --stream-opens-per-second 0.001 --stream-open-burst 1`):
  1 200 refused opens on one connection, each followed by a DATA frame sent after its refusal
  arrived (as a busy gateway's in-flight messages arrive), never close the connection: an
  admitted call on it still answers. h2 closes a connection after 1 024 streams it reset
  itself; a refusal that reset the stream made every late frame such a reset.
Prints one line per check and a summary; exits 1 if any check fails.
"""
import argparse
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + (f" ({detail})" if detail else ""))


def proc_stats(pid):
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return rss_kb, ticks / 100.0


def connect(addr):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def request_headers(path="/hearken.v1.ListeningService/StreamConversations", authority="hearken"):
    return [
        (":method", "POST"), (":scheme", "http"), (":authority", authority), (":path", path),
        ("content-type", "application/grpc"), ("te", "trailers"),
    ]


def pump(sock, conn, seconds, until=None):
    """Reads frames for up to `seconds`; returns (events, closed)."""
    events, deadline = [], time.time() + seconds
    while time.time() < deadline:
        sock.settimeout(max(0.0005, min(0.2, deadline - time.time())))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return events, True
        if not data:
            return events, True
        try:
            new = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            return events, True
        events.extend(new)
        out = conn.data_to_send()
        if out:
            try:
                sock.sendall(out)
            except (ConnectionResetError, BrokenPipeError):
                return events, True
        if until and until(events):
            return events, False
    return events, False


def wait_closed(sock, seconds):
    """Reads and discards whatever arrives, answering nothing, until the server closes the
    connection (True) or `seconds` pass (False)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            if sock.recv(1 << 20) == b"":
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def healthy(addr):
    """A gRPC health check over a fresh connection: an empty request to Health/Check."""
    sock, conn = connect(addr)
    try:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers("/grpc.health.v1.Health/Check"))
        conn.send_data(sid, b"\x00\x00\x00\x00\x00", end_stream=True)
        sock.sendall(conn.data_to_send())
        events, _ = pump(sock, conn, 5, until=lambda ev: any(isinstance(e, h2.events.StreamEnded) for e in ev))
        data = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
        # SERVING is field 1 = 1: 08 01 after the 5-byte gRPC prefix.
        return data[5:7] == b"\x08\x01"
    finally:
        sock.close()


def rapid_reset(addr, pid):
    before = proc_stats(pid)
    sock, conn = connect(addr)
    sent, goaway = 0, False
    try:
        for i in range(10_000):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, request_headers())
            conn.reset_stream(sid)
            try:
                sock.sendall(conn.data_to_send())
            except (ConnectionResetError, BrokenPipeError):
                goaway = True
                break
            sent += 1
            if i % 100 == 99:
                events, closed = pump(sock, conn, 0.01)
                if closed or any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                    goaway = True
                    break
        if not goaway:
            events, closed = pump(sock, conn, 2)
            goaway = closed or any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    except h2.exceptions.ProtocolError:
        goaway = True
    finally:
        sock.close()
    after = proc_stats(pid)
    check("rapid reset: connection ended by the server", goaway, f"after {sent} HEADERS+RST_STREAM pairs")
    check("rapid reset: RSS grew by < 32 MiB", after[0] - before[0] < 32 * 1024, f"{before[0]} -> {after[0]} KiB, CPU {after[1] - before[1]:.2f} s")


def continuation_flood(addr, pid):
    before = proc_stats(pid)
    sock, conn = connect(addr)
    pump(sock, conn, 0.3)
    closed = False
    try:
        sid = conn.get_next_available_stream_id()
        block = conn.encoder.encode(request_headers())
        head = HeadersFrame(sid)
        head.data = block
        head.flags = set()  # no END_HEADERS
        sock.sendall(head.serialize())
        junk = conn.encoder.encode([("x-junk", "a" * 4000)])
        for _ in range(2_000):
            frame = ContinuationFrame(sid)
            frame.data = junk
            try:
                sock.sendall(frame.serialize())
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
        if not closed:
            # The server answers with GOAWAY and closes; wait for the close.
            closed = wait_closed(sock, 5)
    finally:
        sock.close()
    after = proc_stats(pid)
    check("CONTINUATION flood: connection closed by the server", closed)
    check("CONTINUATION flood: RSS grew by < 32 MiB", after[0] - before[0] < 32 * 1024, f"{before[0]} -> {after[0]} KiB")


def stream_limit(addr):
    sock, conn = connect(addr)
    try:
        events, _ = pump(sock, conn, 1, until=lambda ev: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in ev))
        advertised = conn.remote_settings.max_concurrent_streams
        check("SETTINGS advertise 1 000 concurrent streams", advertised == 1000, f"advertised {advertised}")
        # Ignore the advertised limit, as an abusive client would.
        conn.remote_settings = h2.settings.Settings(client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 5000})
        ids = []
        for _ in range(1001):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, request_headers())
            ids.append(sid)
        sock.sendall(conn.data_to_send())
        events, closed = pump(sock, conn, 5, until=lambda ev: any(
            (isinstance(e, h2.events.StreamReset) and e.stream_id == ids[-1]) or isinstance(e, h2.events.ConnectionTerminated) for e in ev))
        refused = [e for e in events if isinstance(e, h2.events.StreamReset) and e.stream_id == ids[-1]]
        ended = closed or any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
        check("the 1 001st concurrent stream is refused", bool(refused) or ended,
              f"reset code {refused[0].error_code!r}" if refused else ("connection ended" if ended else "accepted"))
    finally:
        sock.close()


def ping_flood(addr, pid):
    sock, conn = connect(addr)
    pump(sock, conn, 0.3)
    before, started = proc_stats(pid), time.time()
    sent, acks, closed = 0, 0, False
    try:
        while time.time() - started < 5:
            conn.ping(struct.pack(">Q", sent))
            try:
                sock.sendall(conn.data_to_send())
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            sent += 1
            events, closed = pump(sock, conn, 0.001)
            acks += sum(isinstance(e, h2.events.PingAckReceived) for e in events)
            if closed or any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                closed = True
                break
    finally:
        sock.close()
    elapsed = time.time() - started
    after = proc_stats(pid)
    cpu = (after[1] - before[1]) / elapsed
    check("ping flood: server CPU below half a core", cpu < 0.5,
          f"{sent} PINGs in {elapsed:.1f} s, {acks} acked, connection {'closed' if closed else 'kept'}, server CPU {cpu * 100:.0f} % of a core")


def black_hole(addr, deadline):
    sock, conn = connect(addr)
    try:
        pump(sock, conn, 0.3)
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers())
        sock.sendall(conn.data_to_send())
        # From here on, nothing is answered: the server's keepalive PINGs get no ACK.
        started = time.time()
        closed = wait_closed(sock, deadline)
        check("black-holed client disconnected by keepalive", closed,
              f"after {time.time() - started:.1f} s (deadline {deadline} s)")
    finally:
        sock.close()


def grpc_message(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def utterance_request(conversation, utterance, start_ms):
    """A StreamConversationsRequest with one customer utterance, encoded by hand (protobuf)."""
    def field(number, wire, value):
        return bytes([number << 3 | wire]) + value
    def text(number, s):
        b = s.encode()
        return field(number, 2, bytes([len(b)]) + b)
    def varint(n):
        out = b""
        while True:
            byte = n & 0x7F
            n >>= 7
            if n:
                out += bytes([byte | 0x80])
            else:
                return out + bytes([byte])
    inner = text(1, utterance) + field(2, 0, varint(2)) + text(4, "hello there") \
        + field(5, 0, varint(start_ms)) + field(6, 0, varint(start_ms + 900))
    return text(1, conversation) + field(3, 2, varint(len(inner)) + inner)


def refusals(addr):
    sock, conn = connect(addr)
    try:
        pump(sock, conn, 0.3)
        kept = conn.get_next_available_stream_id()
        conn.send_headers(kept, request_headers())
        conn.send_data(kept, grpc_message(utterance_request("kept", "u1", 0)))
        sock.sendall(conn.data_to_send())
        events, closed = pump(sock, conn, 5, until=lambda ev: any(
            isinstance(e, h2.events.DataReceived) and e.stream_id == kept for e in ev))
        for e in events:
            if isinstance(e, h2.events.DataReceived):
                conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        admitted = any(isinstance(e, h2.events.DataReceived) and e.stream_id == kept for e in events)
        check("refusals: the first call is admitted", admitted)
        refused, late, ended = 0, 0, closed
        for _ in range(6):
            if ended:
                break
            batch = []
            for _ in range(200):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, request_headers())
                batch.append(sid)
            sock.sendall(conn.data_to_send())
            done = set()
            def answered(ev):
                for e in ev:
                    if isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id in batch:
                        done.add(e.stream_id)
                return len(done) == len(batch) or any(isinstance(e, h2.events.ConnectionTerminated) for e in ev)
            events, closed = pump(sock, conn, 10, until=answered)
            ended = closed or any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
            refused += len(done)
            # Each refused stream's in-flight message arrives after its refusal. Where the
            # server reset the stream, the client's own HTTP/2 state would no longer send on it,
            # so the frame is written raw, as a message already in flight would arrive.
            for sid in batch:
                message = grpc_message(utterance_request("refused", "u1", 0))
                try:
                    conn.send_data(sid, message, end_stream=True)
                    out = conn.data_to_send()
                except h2.exceptions.StreamClosedError:
                    frame = DataFrame(sid)
                    frame.data = message
                    frame.flags = {"END_STREAM"}
                    out = frame.serialize()
                try:
                    sock.sendall(out)
                    late += 1
                except (ConnectionResetError, BrokenPipeError):
                    ended = True
                    break
            events, closed = pump(sock, conn, 0.2)
            ended = ended or closed or any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
        check("refusals: 1 200 refused opens with late messages keep the connection", not ended,
              f"{refused} refused, {late} late messages, connection {'closed' if ended else 'open'}")
        if not ended:
            conn.send_data(kept, grpc_message(utterance_request("kept", "u2", 1000)))
            sock.sendall(conn.data_to_send())
            events, closed = pump(sock, conn, 5, until=lambda ev: any(
                isinstance(e, h2.events.DataReceived) and e.stream_id == kept for e in ev))
            answered_kept = any(isinstance(e, h2.events.DataReceived) and e.stream_id == kept for e in events)
        else:
            answered_kept = False
        check("refusals: the admitted call still answers", answered_kept)
    finally:
        sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addr", required=True)
    parser.add_argument("--pid", required=True, type=int)
    parser.add_argument("--refusals", action="store_true",
                        help="only the refusals check (a server refusing all but the first open)")
    parser.add_argument("--keepalive-deadline", type=float, default=0,
                        help="run the black-hole check: the server must disconnect within this many seconds")
    args = parser.parse_args()
    check("server healthy at the start", healthy(args.addr))
    if args.refusals:
        refusals(args.addr)
        check("healthy after the refusals", healthy(args.addr))
        passed = sum(results)
        print(f"h2 refusals: {passed} passed, {len(results) - passed} failed")
        sys.exit(0 if passed == len(results) else 1)
    rapid_reset(args.addr, args.pid)
    check("healthy after the rapid reset", healthy(args.addr))
    continuation_flood(args.addr, args.pid)
    check("healthy after the CONTINUATION flood", healthy(args.addr))
    stream_limit(args.addr)
    check("healthy after the stream-limit check", healthy(args.addr))
    ping_flood(args.addr, args.pid)
    check("healthy after the ping flood", healthy(args.addr))
    if args.keepalive_deadline > 0:
        black_hole(args.addr, args.keepalive_deadline)
    passed = sum(results)
    print(f"h2 abuse: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
