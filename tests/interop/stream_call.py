#!/usr/bin/env python3
"""Cross-language check: a Python grpcio client built only from proto/ streams a call to a
running `hearken serve`, receives updates, an alert and a scorecard, and checks health.

    python3 tests/interop/stream_call.py --addr 127.0.0.1:50051

Needs grpcio, grpcio-tools and grpcio-health-checking (installed by .ci/run). Prints a closing
line 'interop: N passed, M failed' and exits non-zero on any failure.
"""

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto")


def generate(out):
    import grpc_tools
    from grpc_tools import protoc

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = ["protoc", "-I", PROTO, "-I", include, "--python_out", out, "--grpc_python_out", out,
            "hearken/v1/hearken.proto"]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    args = parser.parse_args()
    out = tempfile.mkdtemp(prefix="hearken-interop-")
    generate(out)
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from hearken.v1 import hearken_pb2 as pb, hearken_pb2_grpc as rpc

    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail))

    channel = grpc.insecure_channel(args.addr)
    grpc.channel_ready_future(channel).result(timeout=20)

    health = health_pb2_grpc.HealthStub(channel)
    for service in ["", "hearken.v1.ListeningService"]:
        r = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        check("health %r is SERVING" % service, r.status == health_pb2.HealthCheckResponse.SERVING, str(r))

    def requests():
        cid = "py-1"
        yield pb.StreamConversationsRequest(conversation_id=cid, start=pb.ConversationStart(channel=pb.CHANNEL_VOICE, language="en"))
        yield pb.StreamConversationsRequest(conversation_id=cid, utterance=pb.Utterance(
            utterance_id="u1", role=pb.ROLE_CUSTOMER, text="my internet drops out every evening around eight",
            start_ms=0, end_ms=6000))
        yield pb.StreamConversationsRequest(conversation_id=cid, utterance=pb.Utterance(
            utterance_id="u2", role=pb.ROLE_AGENT, text="mm-hmm", start_ms=2000, end_ms=2400))
        yield pb.StreamConversationsRequest(conversation_id=cid, utterance=pb.Utterance(
            utterance_id="u3", role=pb.ROLE_AGENT, text="have you restarted the router", start_ms=3500, end_ms=5000))
        yield pb.StreamConversationsRequest(conversation_id=cid, end=pb.ConversationEnd())

    stub = rpc.ListeningServiceStub(channel)
    responses = list(stub.StreamConversations(requests(), timeout=20))
    kinds = [r.WhichOneof("payload") for r in responses]
    check("responses are update, update, update, alert, scorecard", kinds == ["update", "update", "update", "alert", "scorecard"], str(kinds))
    check("seq runs 1..5 without gaps", [r.seq for r in responses] == [1, 2, 3, 4, 5], str([r.seq for r in responses]))
    behaviours = [b.behaviour for b in responses[1].update.behaviours]
    check("mm-hmm is a backchannel", behaviours == [pb.BEHAVIOUR_BACKCHANNEL], str(behaviours))
    alert = responses[3].alert
    check("the interruption raises an alert", alert.kind == pb.ALERT_KIND_INTERRUPTION and list(alert.evidence_utterance_ids) == ["u3", "u1"], str(alert))
    card = responses[4].scorecard
    check("the scorecard counts one interruption and one backchannel",
          card.metrics.interruptions == 1 and card.metrics.backchannels == 1 and card.end_reason == pb.END_REASON_COMPLETED, str(card.metrics))

    batch = stub.ScoreTranscript(pb.ScoreTranscriptRequest(conversation_id="py-1", utterances=[
        r.utterance for r in list(requests()) if r.WhichOneof("payload") == "utterance"]), timeout=20)
    check("ScoreTranscript gives the live scorecard", batch.scorecard.score == card.score and batch.scorecard.metrics == card.metrics)

    try:
        stub.ScoreTranscript(pb.ScoreTranscriptRequest(conversation_id="empty"), timeout=10)
        check("an empty transcript is INVALID_ARGUMENT", False, "no error")
    except grpc.RpcError as e:
        check("an empty transcript is INVALID_ARGUMENT", e.code() == grpc.StatusCode.INVALID_ARGUMENT, str(e.code()))

    passed = sum(results)
    failed = len(results) - passed
    print("interop: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
