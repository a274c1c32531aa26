"""What a Kafka-API broker does of the protocol flow's instance groups and exactly-once sinks
need; run by scripts/kafka-broker-probe (see there). Prints one line per check: yes/no and
what was seen."""
import subprocess
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BS = sys.argv[1]


def topic(partitions):
    name = "probe-" + uuid.uuid4().hex[:10]
    admin = AdminClient({"bootstrap.servers": BS})
    for _, f in admin.create_topics([NewTopic(name, partitions, 1)]).items():
        f.result()
    return name


def read(t, partitions, isolation):
    """Every value of t from the start, until nothing came for 3 s (no end offsets: a broker
    may answer them wrongly)."""
    c = Consumer({"bootstrap.servers": BS, "group.id": "probe-read-" + uuid.uuid4().hex,
                  "isolation.level": isolation, "enable.auto.commit": False})
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for p in range(partitions)])
    got, last = [], time.time()
    while time.time() - last < 3:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m.value().decode())
            last = time.time()
    c.close()
    return got


def producer(tid, **extra):
    p = Producer({"bootstrap.servers": BS, "transactional.id": tid, **extra})
    p.init_transactions(15)
    return p


def die_in_transaction(t, tid, timeout_ms):
    """A producer with transactional id `tid` (transaction timeout `timeout_ms`) that writes
    `dead` to partition 0 of `t` in a transaction and exits without ending it."""
    code = (
        "import os\nfrom confluent_kafka import Producer\n"
        f"p = Producer({{'bootstrap.servers': '{BS}', 'transactional.id': '{tid}', 'transaction.timeout.ms': {timeout_ms}}})\n"
        f"p.init_transactions(15); p.begin_transaction(); p.produce('{t}', value='dead', partition=0); p.flush(); os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def report(name, ok, seen):
    print(f"{'yes' if ok else 'NO ':3}  {name}: {seen}", flush=True)


def transactions():
    t = topic(2)
    p = producer("probe-" + t)
    p.begin_transaction()
    for i in range(10):
        p.produce(t, value=f"c{i}", partition=i % 2)
    p.commit_transaction(15)
    p.begin_transaction()
    for i in range(5):
        p.produce(t, value=f"a{i}", partition=i % 2)
    p.flush()
    p.abort_transaction(15)
    committed = read(t, 2, "read_committed")
    report("read_committed hides an aborted transaction's rows", len(committed) == 10,
           f"{len(committed)} rows read, 10 committed and 5 aborted written")
    p.begin_transaction()
    for i in range(4):
        p.produce(t, value=f"o{i}", partition=i % 2)
    p.flush()
    q = producer("probe-q-" + t)
    q.begin_transaction()
    for i in range(6):
        q.produce(t, value=f"q{i}", partition=i % 2)
    q.commit_transaction(15)
    after = [v for v in read(t, 2, "read_committed") if v[0] in "oq"]
    report("read_committed stops at an open transaction (last stable offset)", not after,
           f"{len(after)} rows of the open transaction and of one committed after it read (0 expected)")
    p.abort_transaction(15)

    # Offsets of two consumer groups in one transaction, as an instance commits its sources'
    # and its repartition readers' positions.
    groups = {}
    for name in ("src", "rep"):
        c = Consumer({"bootstrap.servers": BS, "group.id": f"probe-{name}-{t}", "enable.auto.commit": False})
        c.subscribe([t])
        deadline = time.time() + 40
        while not c.assignment() and time.time() < deadline:
            c.poll(0.2)
        groups[name] = c
    results = []
    for abort in (True, False):
        p.begin_transaction()
        p.produce(t, value="x", partition=0)
        for c in groups.values():
            p.send_offsets_to_transaction([TopicPartition(t, 0, 5), TopicPartition(t, 1, 6)],
                                          c.consumer_group_metadata(), 15)
        (p.abort_transaction if abort else p.commit_transaction)(15)
        results.append([[x.offset for x in c.committed([TopicPartition(t, 0), TopicPartition(t, 1)], 15)]
                        for c in groups.values()])
    aborted, commited = results
    report("offsets of two groups commit with a transaction and vanish with an abort",
           all(o == [5, 6] for o in commited) and all(all(x < 0 for x in o) for o in aborted),
           f"after abort {aborted}, after commit {commited}")

    # Zombie fencing by the group's generation (exactly-once v2): offsets sent with the
    # metadata of a member that since lost partitions must fail.
    old = groups["src"].consumer_group_metadata()
    c2 = Consumer({"bootstrap.servers": BS, "group.id": f"probe-src-{t}", "enable.auto.commit": False})
    c2.subscribe([t])
    deadline = time.time() + 40
    while time.time() < deadline and not (c2.assignment() and len(groups["src"].assignment()) < 2):
        c2.poll(0.2)
        groups["src"].poll(0.2)
    p.begin_transaction()
    p.produce(t, value="z", partition=0)
    try:
        p.send_offsets_to_transaction([TopicPartition(t, 0, 7)], old, 15)
        p.commit_transaction(15)
        report("offsets sent with an old group generation are refused (zombie fencing)", False, "committed")
    except KafkaException as e:
        report("offsets sent with an old group generation are refused (zombie fencing)", True, e.args[0].name())
    for c in (*groups.values(), c2):
        c.close()

    # A producer that dies inside a transaction: the broker aborts it after
    # transaction.timeout.ms (6 s), and read_committed readers go past it.
    die_in_transaction(t, "probe-dead-" + t, 6000)
    q.begin_transaction()
    q.produce(t, value="after", partition=0)
    q.commit_transaction(15)
    start = time.time()
    while True:
        committed = read(t, 2, "read_committed")
        if "after" in committed:
            report("a dead producer's open transaction is aborted after its timeout", "dead" not in committed,
                   f"rows after it readable {time.time() - start:.0f} s later; its own row {'shown' if 'dead' in committed else 'hidden'}")
            break
        if time.time() - start > 40:
            report("a dead producer's open transaction is aborted after its timeout", False,
                   "read_committed still stops at it after 40 s (6 s timeout)")
            break

    # The same dead producer's transactional id started again (an instance restarted with its
    # id): its first InitProducerId must fence the old producer and abort its open
    # transaction, long before any timeout, so that read_committed readers go past it.
    t = topic(1)
    tid = "probe-restart-" + t
    die_in_transaction(t, tid, 600000)
    start = time.time()
    again = producer(tid, **{"transaction.timeout.ms": 600000})
    took = time.time() - start
    again.begin_transaction()
    again.produce(t, value="after", partition=0)
    again.commit_transaction(15)
    committed = read(t, 1, "read_committed")
    report("the dead producer's transactional id started again aborts its open transaction",
           committed == ["after"], f"init took {took:.1f} s; read_committed read {committed}")


MEMBER = """
import sys, time
from confluent_kafka import Consumer
def assigned(c, parts): print(len(parts), flush=True)
conf = {'bootstrap.servers': sys.argv[1], 'group.id': sys.argv[2], 'session.timeout.ms': 10000,
        'heartbeat.interval.ms': 1000}
if len(sys.argv) > 4:
    conf['group.instance.id'] = sys.argv[4]
c = Consumer(conf)
c.subscribe([sys.argv[3]], on_assign=assigned, on_revoke=lambda c, p: print(0, flush=True))
while True:
    c.poll(0.5)
"""


def groups(static):
    """Three members share 12 partitions; one is killed. Dynamic members: the survivors must
    get its partitions. Static ones (`group.instance.id`): the member started again with the
    killed one's id must get them back, the others keeping theirs."""
    t = topic(12)
    group = "probe-group-" + t
    members, counts, changes = [], [], []
    import os
    import selectors
    sel = selectors.DefaultSelector()

    def start(i, slot):
        ident = [f"member-{slot}"] if static else []
        m = subprocess.Popen([sys.executable, "-c", MEMBER, BS, group, t, *ident], stdout=subprocess.PIPE, text=True)
        os.set_blocking(m.stdout.fileno(), False)
        sel.register(m.stdout, selectors.EVENT_READ, i)
        members.append(m)
        counts.append(0)
        changes.append(0)

    for i in range(3):
        start(i, i)
        time.sleep(1)

    def watch(seconds):
        start = time.time()
        while time.time() - start < seconds:
            for key, _ in sel.select(0.2):
                for line in key.fileobj.read().split():
                    counts[key.data] = int(line)
                    changes[key.data] += 1

    def settle(alive, limit):
        start = time.time()
        while time.time() - start < limit:
            watch(0.2)
            if sum(counts[i] for i in alive) == 12 and all(counts[i] > 0 for i in alive):
                return time.time() - start
        return None

    try:
        first = settle([0, 1, 2], 60)
        kind = "static members" if static else "three members"
        report(f"{kind} share 12 partitions", first is not None, f"{counts}")
        members[1].kill()
        members[1].wait()
        sel.unregister(members[1].stdout)
        if static:
            before = (changes[0], changes[2])
            start(3, 1)
            after = settle([0, 2, 3], 60)
            # Past the dead member's session timeout: a broker that expires it now deals
            # the partitions anew.
            watch(12)
            kept = (changes[0], changes[2]) == before
            report("a killed static member started again with its id gets its partitions back, the others keeping theirs",
                   after is not None and kept,
                   (f"in {after:.0f} s" if after is not None else f"after 60 s the members hold {counts[0]}, {counts[2]}, {counts[3]} of 12")
                   + ("" if kept else f"; the others' assignments changed {changes[0] - before[0] + changes[2] - before[1]} times"))
        else:
            after = settle([0, 2], 60)
            report("the survivors get a killed member's partitions", after is not None,
                   f"in {after:.0f} s" if after is not None else f"after 60 s they hold {counts[0]} + {counts[2]} of 12")
    finally:
        for m in members:
            m.kill()


if __name__ == "__main__":
    print(f"probing the Kafka-API broker at {BS}", flush=True)
    try:
        transactions()
    except KafkaException as e:
        report("transactions (the checks after the last line above did not run)", False,
               f"{e.args[0].name()}: {e.args[0].str()}")
    groups(static=False)
    groups(static=True)
