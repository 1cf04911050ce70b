# A session of the python-etcd3 client (Debian python3-etcd3, gRPC) against one server:
# tests/tests/python_client.rs runs it against the reference etcd and against cairn and
# compares the printed results. Usage: python3 python_etcd3.py PORT
import sys, threading, time
import etcd3
port = int(sys.argv[1])
c = etcd3.client(host="127.0.0.1", port=port)
out = []
c.put("py/a", "1"); c.put("py/b", "2")
v, meta = c.get("py/a"); out.append(("get", v, meta.version, meta.create_revision > 0))
out.append(("prefix", sorted((v, m.key) for v, m in c.get_prefix("py/"))))
out.append(("replace ok", c.replace("py/a", "1", "3")))
out.append(("replace bad", c.replace("py/a", "1", "4")))
ok, resp = c.transaction(compare=[c.transactions.value("py/b") == "2"], success=[c.transactions.put("py/c", "x")], failure=[])
out.append(("txn", ok))
lease = c.lease(5)
c.put("py/leased", "v", lease=lease)
out.append(("lease ttl", lease.remaining_ttl > 0, [k for k in lease.keys]))
lease.refresh()
events = []
def watch():
    it, cancel = c.watch_prefix("py/w")
    for ev in it:
        events.append((type(ev).__name__, ev.key, ev.value))
        if len(events) == 2:
            cancel(); break
t = threading.Thread(target=watch); t.start(); time.sleep(0.5)
c.put("py/w1", "a"); c.delete("py/w1"); t.join(5)
out.append(("watch", events))
lock = c.lock("py-lock", ttl=5)
out.append(("lock", lock.acquire(timeout=3), lock.is_acquired()))
lock.release()
out.append(("delete prefix", c.delete_prefix("py/").deleted))
st = c.status(); out.append(("status", st.version is not None, st.leader is not None))
out.append(("members", len(list(c.members))))
lease.revoke()
for o in out: print(o)
