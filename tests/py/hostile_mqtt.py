"""Publishes malformed and hostile payloads to a Luach broker with a real MQTT client (paho),
then one valid hello, so a test can check the server kept serving and still ingests.

usage: hostile_mqtt.py HOST PORT GOOD_DEVICE_ID
"""
import json
import sys
import uuid
from datetime import datetime, timezone

import paho.mqtt.client as mqtt

host, port, good = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def envelope(kind, body, **overrides):
    env = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "type": kind,
        "ts": datetime.now(timezone.utc).isoformat(),
        "body": body,
    }
    env.update(overrides)
    return json.dumps(env).encode()


hostile = [
    ("/tenants/evil1/up/heartbeat", b"not json at all"),
    ("/tenants/evil1/up/heartbeat", b"\xff\xfe\x00binary"),
    ("/tenants/evil1/up/heartbeat", b""),
    ("/tenants/evil1/up/heartbeat", b"[1,2,3]"),
    ("/tenants/evil1/up/heartbeat", envelope("heartbeat", {"session": 5})),
    ("/tenants/evil1/up/heartbeat", envelope("hello", {"session": "s", "uptime_s": 1})),
    ("/tenants/evil1/up/heartbeat", envelope("heartbeat", {"session": "s", "uptime_s": 1}, v=99)),
    ("/tenants/evil1/up/metrics", envelope("metrics", {"cpu_percent": "hot"})),
    ("/tenants/evil1/up/hello", envelope("hello", {"agent_version": "1", "session": "s", "platform": "x", "extra": 1})),
    ("/tenants/evil1/up/heartbeat", b"{" * 20000),
    ("/tenants/evil1/up/telemetry", b"x" * 40000),
    ("/tenants/EVIL/up/hello", b"{}"),
    ("/tenants/evil1/up/nonsense", b"{}"),
    ("/tenants/evil1/sideways/hello", b"{}"),
    ("/tenants/evil1/up/ack", envelope("ack", {"command_id": "never-sent", "status": "ok"})),
    ("/tenants/evil1/up/event", envelope("event", {"event": "offline", "session": {"$ne": None}})),
]

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="evil1")
client.connect(host, port, keepalive=30)
client.loop_start()
infos = []
for _ in range(30):
    for topic, payload in hostile:
        infos.append(client.publish(topic, payload, qos=1))
good_hello = envelope(
    "hello",
    {"agent_version": "9.9.9", "session": "good-session", "platform": "test-paho", "ip": None, "uptime_s": 1},
)
infos.append(client.publish(f"/tenants/{good}/up/hello", good_hello, qos=1))
for info in infos:
    info.wait_for_publish(timeout=30)
client.disconnect()
client.loop_stop()
print(f"published {len(infos)} messages")
