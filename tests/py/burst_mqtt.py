"""Publishes a hello and then N heartbeats as fast as QoS 1 allows, from one real client.

usage: burst_mqtt.py HOST PORT DEVICE_ID N
"""
import json
import sys
import uuid
from datetime import datetime, timezone

import paho.mqtt.client as mqtt

host, port, device, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])


def envelope(kind, body):
    return json.dumps(
        {"v": 1, "id": str(uuid.uuid4()), "type": kind, "ts": datetime.now(timezone.utc).isoformat(), "body": body}
    ).encode()


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device)
client.max_inflight_messages_set(100)
client.connect(host, port, keepalive=30)
client.loop_start()
hello = {"agent_version": "burst", "session": "burst-session", "platform": "paho", "ip": None, "uptime_s": 1}
infos = [client.publish(f"/tenants/{device}/up/hello", envelope("hello", hello), qos=1)]
for i in range(count):
    body = {"session": "burst-session", "uptime_s": i}
    infos.append(client.publish(f"/tenants/{device}/up/heartbeat", envelope("heartbeat", body), qos=1))
for info in infos:
    info.wait_for_publish(timeout=120)
client.disconnect()
client.loop_stop()
print(f"published {len(infos)} messages")
