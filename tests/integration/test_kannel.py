"""test_kannel.py - smoke suite of the private Kannel that deploy/kannel.sh runs (docs/kannel.md).

Real bearerbox, smsbox and fakesmsc on loopback; a small threaded HTTP server stands in for hifadhi-gateway
(/kannel/mo and a DLR URL), and a minimal SMPP SMSC stands in for the operator's SMPP link (bind, submit_sm,
deliver_sm with TLVs: just enough to check our SMPP configuration, not a simulator). Checks what the gateway
and the subscriber would notice: texts intact, delivery reports, MO parameters, replies, no Kannel error text
to the subscriber, queued MT surviving kill -9 of bearerbox, and nothing left running.
"""

import http.server
import socket
import struct
import threading
import time
import urllib.parse

from harness import Suite, free_port, POLL_S, wait_for
from kannel import Kannel

SHORT_CODE = "384"


class StandIn:
    """hifadhi-gateway's Kannel endpoints, recorded: GET /kannel/mo (reply body and headers chosen per text in
    self.replies) and GET /kannel/dlr. Threaded, with a real listen backlog; stop() and start() on the same port
    model a gateway that is down."""

    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.mo, self.dlr = [], []
        self.replies = {}  # MO text -> (body, {header: value})
        self.fail_first = {}  # MO text -> how many times to answer 503 before answering normally
        self.server = None
        self.conns = set()
        self.start()

    def start(self):
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as smsbox's HTTP client uses it

            def setup(self):
                super().setup()
                with standin.lock:
                    standin.conns.add(self.connection)

            def finish(self):
                with standin.lock:
                    standin.conns.discard(self.connection)
                super().finish()

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True,
                                                                 encoding="utf-8", errors="strict").items()}
                body, headers, status = b"", {}, 200
                with standin.lock:
                    if url.path == "/kannel/mo":
                        standin.mo.append(q)
                        text, headers = standin.replies.get(q.get("text"), ("", {}))
                        body = text.encode("utf-8")
                        if standin.fail_first.get(q.get("text"), 0) > 0:
                            standin.fail_first[q["text"]] -= 1
                            body, headers, status = b"try later", {}, 503
                    elif url.path == "/kannel/dlr":
                        standin.dlr.append(q)
                    else:
                        status = 404
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=UTF-8")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 256  # Kannel fires callbacks in bursts; the default backlog of 5 loses some
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        """Down as a crashed gateway is: the listener AND every kept-alive connection closed."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            conns, self.conns = list(self.conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait(self, kind, pred, n=1, timeout=10.0):
        """Polls for n recorded requests of kind ('mo' or 'dlr') matching pred; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                got = [q for q in getattr(self, kind) if pred(q)]
            if len(got) >= n or time.monotonic() >= deadline:
                return got
            time.sleep(POLL_S)


# ---- a minimal SMPP 3.4 SMSC: enough to bind Kannel's smpp link and see what crosses it

BIND_TRANSCEIVER, SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x09, 0x04, 0x05, 0x06, 0x15
RESP = 0x80000000


def _cstr(buf, i):
    end = buf.index(b"\0", i)
    return buf[i:end].decode("latin-1"), end + 1


def parse_submit_sm(body):
    """submit_sm / deliver_sm body -> dict(src, dst, data_coding, text bytes, tlvs {tag: bytes})."""
    _, i = _cstr(body, 0)  # service_type
    i += 2
    src, i = _cstr(body, i)
    i += 2
    dst, i = _cstr(body, i)
    i += 3  # esm_class, protocol_id, priority_flag
    _, i = _cstr(body, i)  # schedule_delivery_time
    _, i = _cstr(body, i)  # validity_period
    registered_delivery, _, data_coding, _, sm_length = body[i:i + 5]
    i += 5
    text = body[i:i + sm_length]
    i += sm_length
    tlvs = {}
    while i + 4 <= len(body):
        tag, length = struct.unpack(">HH", body[i:i + 4])
        tlvs[tag] = body[i + 4:i + 4 + length]
        i += 4 + length
    return {"src": src, "dst": dst, "data_coding": data_coding, "registered_delivery": registered_delivery,
            "text": text, "tlvs": tlvs}


class SmppStub:
    """Listens on 127.0.0.1; one ESME at a time. Answers bind_transceiver, enquire_link and unbind, records
    every submit_sm (answering with a message id), and sends deliver_sm on demand."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conn, self.seq, self.binds, self.submits, self.delivered = None, 0x1000, [], [], []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _send(self, conn, cmd, status, seq, body=b""):
        with self.lock:
            conn.sendall(struct.pack(">IIII", 16 + len(body), cmd, status, seq) + body)

    def _serve(self, conn):
        try:
            while True:
                length, cmd, _, seq = struct.unpack(">IIII", self._read(conn, 16))
                body = self._read(conn, length - 16)
                if cmd == BIND_TRANSCEIVER:
                    system_id, _ = _cstr(body, 0)
                    password, _ = _cstr(body, len(system_id) + 1)
                    with self.lock:
                        self.binds.append((system_id, password))
                        self.conn = conn
                    self._send(conn, RESP | cmd, 0, seq, b"stub\0")
                elif cmd == ENQUIRE_LINK:
                    self._send(conn, RESP | cmd, 0, seq)
                elif cmd == SUBMIT_SM:
                    with self.lock:
                        self.submits.append(parse_submit_sm(body))
                        msg_id = f"stub{len(self.submits)}".encode()
                    self._send(conn, RESP | cmd, 0, seq, msg_id + b"\0")
                elif cmd == UNBIND:
                    self._send(conn, RESP | cmd, 0, seq)
                    break
                elif cmd == RESP | DELIVER_SM:
                    with self.lock:
                        self.delivered.append(seq)
                elif not cmd & RESP:
                    self._send(conn, RESP, 3, seq)  # generic_nack, invalid command id
        except (EOFError, OSError, ValueError):
            pass
        finally:
            with self.lock:
                if self.conn is conn:
                    self.conn = None
            conn.close()

    def bound(self):
        with self.lock:
            return self.conn is not None

    def deliver(self, src, dst, text, tlvs, esm_class=0):
        """A deliver_sm (GSM text, default alphabet) with TLVs {tag: bytes}: an MO, or with esm_class 0x04 a
        delivery receipt. Returns its sequence number."""
        with self.lock:
            self.seq += 1
            seq, conn = self.seq, self.conn
        data = text.encode("ascii")
        body = b"\0" + bytes([1, 1]) + src.encode() + b"\0" + bytes([0, 0]) + dst.encode() + b"\0"
        body += bytes([esm_class, 0, 0]) + b"\0\0" + bytes([0, 0, 0, 0, len(data)]) + data
        body += b"".join(struct.pack(">HH", tag, len(v)) + v for tag, v in tlvs.items())
        self._send(conn, DELIVER_SM, 0, seq, body)
        return seq

    def close(self):
        self.sock.close()



with Suite() as s:
    t0 = time.monotonic()
    gw = StandIn()
    smsc = SmppStub()
    k = Kannel(s, gateway_port=gw.port, smpp=True, smpp_port=smsc.port)
    s.eq(k.status()[0], 0, "start: bearerbox, fakesmsc and smsbox run")
    r = k.script("start")
    s.check("already running" in r.stdout, "start again is a no-op that says so", r.stdout)
    conf_mode = (k.dir / "kannel.conf").stat().st_mode & 0o777
    pw_mode = (k.dir / "sendsms.password").stat().st_mode & 0o777
    s.check(conf_mode == 0o600 and pw_mode == 0o600, "kannel.conf and the sendsms password are mode 0600",
            f"{conf_mode:o} {pw_mode:o}")
    s.check(len(k.sendsms_password) >= 16, "a generated sendsms password", k.sendsms_password)

    # ---- MT through sendsms to fakesmsc
    gsm = "Malipo ya KES 4,000 yako tayari @ kiosk Kibera-3 (ref A7-19) $ £ ¥ è"
    s.eq(k.sendsms("254700000101", gsm), 202, "sendsms accepts a GSM text (202)")
    got = k.wait_received(1, match=lambda m: m.to == "254700000101")
    s.eq([(m.frm, m.text, m.coding, m.parts) for m in got], [(SHORT_CODE, gsm, 0, 1)],
         "the GSM text reaches fakesmsc intact, from the short code")

    ucs = "Malipo yamefika — café, déjà payé, ça marche; Asante sana 😀"
    s.eq(k.sendsms("254700000102", ucs, coding=2), 202, "sendsms accepts a UCS-2 text (coding=2)")
    got = k.wait_received(1, match=lambda m: m.to == "254700000102")
    s.eq([(m.text, m.coding) for m in got], [(ucs, 2)], "Swahili/French accents and an emoji arrive intact as UCS-2")

    long_gsm = " ".join(f"Sehemu{i:02d} ya ujumbe mrefu" for i in range(12))  # > 160 characters
    s.eq(k.sendsms("254700000103", long_gsm), 202, "sendsms accepts a long GSM text")
    got = k.wait_received(1, match=lambda m: m.to == "254700000103")
    s.eq([(m.text, m.coding, m.parts) for m in got], [(long_gsm, 0, 2)],
         f"a {len(long_gsm)}-character GSM text arrives as 2 concatenated parts (UDH) that join back intact")
    long_ucs = "Ombi lako limepokelewa — tutakujibu ndani ya siku tatu. Merci, à bientôt! " * 2
    s.eq(k.sendsms("254700000104", long_ucs, coding=2), 202, "sendsms accepts a long UCS-2 text")
    got = k.wait_received(1, match=lambda m: m.to == "254700000104")
    s.eq([(m.text, m.coding, m.parts) for m in got], [(long_ucs, 2, 3)],
         f"a {len(long_ucs)}-character UCS-2 text arrives as 3 concatenated parts that join back intact")

    k.sendsms_password, good = "not-the-password", k.sendsms_password
    st = k.sendsms("254700000105", "wrong password")
    k.sendsms_password = good
    s.eq(st, 403, "sendsms with a wrong password is refused (403)")

    # ---- DLR callback with our own reference
    dlr_url = f"http://127.0.0.1:{gw.port}/kannel/dlr?ref=MT-0042&status=%d&smsc=%i&answer=%A&to=%p&ts=%T"
    s.eq(k.sendsms("254700000106", "Ujumbe wenye ripoti", dlr_url=dlr_url), 202, "sendsms with a dlr-url")
    dlrs = gw.wait("dlr", lambda q: q.get("ref") == "MT-0042", n=2)
    s.eq([q.get("status") for q in dlrs], ["8", "1"],
         "the DLR callbacks carry our reference, 8 (delivered to SMSC) then 1 (delivered to phone)")
    s.check(dlrs and all(q.get("to") == "254700000106" and q.get("smsc") == "fake" and q.get("ts", "").isdigit()
                         for q in dlrs), "the DLR callbacks name the subscriber, the link and a unix time", dlrs)

    # ---- MO from fakesmsc to the gateway
    k.mo("254700000201", SHORT_CODE, "STATUS  tafadhali   sasa")
    mos = gw.wait("mo", lambda q: q.get("from") == "254700000201")
    q = mos[0] if mos else {}
    s.eq((q.get("to"), q.get("text"), q.get("coding"), q.get("smsc")),
         (SHORT_CODE, "STATUS  tafadhali   sasa", "0", "fake"),
         "an MO reaches /kannel/mo with sender, receiver, text (spaces kept), coding and link")
    s.check(len(q.get("id", "")) == 36 and q["id"].count("-") == 4, "the MO carries Kannel's message id", q)
    s.check(len(q.get("ts", "")) == 19, "the MO carries its UTC time (YYYY-MM-DD HH:MM:SS)", q)

    k.mo("254700000202", SHORT_CODE, "Habari, naomba msaada 😀", ucs2=True)
    mos = gw.wait("mo", lambda q: q.get("from") == "254700000202")
    q = mos[0] if mos else {}
    s.eq((q.get("text"), q.get("coding"), q.get("charset")), ("Habari, naomba msaada 😀", "0", "UTF-8"),
         "a UCS-2 MO reaches the gateway recoded to UTF-8")

    # ---- the gateway's reply body goes back to the sender
    gw.replies["HALI"] = ("Asante! Hali yako: umesajiliwa. Malipo yajayo: 3 Machi.", {})
    k.mo("254700000203", SHORT_CODE, "HALI")
    got = k.wait_received(1, match=lambda m: m.to == "254700000203")
    s.eq([(m.frm, m.text) for m in got], [(SHORT_CODE, "Asante! Hali yako: umesajiliwa. Malipo yajayo: 3 Machi.")],
         "the stand-in's reply body comes back to the sender as an MT from the short code")
    # The first MO's empty answer was processed before the later MO were even written: a reply to it would
    # have reached fakesmsc before the HALI reply did.
    s.eq([m for m in k.received() if m.to == "254700000201"], [], "an empty reply body sends nothing to the subscriber")
    sw = "Ombi limepokelewa ✔ — tutakupigia simu 📞"
    gw.replies["MSAADA"] = (sw, {"X-Kannel-Coding": "2"})
    k.mo("254700000206", SHORT_CODE, "MSAADA")
    got = k.wait_received(1, match=lambda m: m.to == "254700000206")
    s.eq([(m.text, m.coding) for m in got], [(sw, 2)], "a reply with X-Kannel-Coding: 2 goes out as UCS-2, intact")

    # ---- a callback answered with anything but 200 is retried, with the same message id
    gw.replies["BAKI"] = ("Salio lako: KES 0", {})
    gw.fail_first["BAKI"] = 1
    k.mo("254700000207", SHORT_CODE, "BAKI")
    mos = gw.wait("mo", lambda q: q.get("from") == "254700000207", n=2)
    s.check(len(mos) == 2 and mos[0]["id"] == mos[1]["id"],
            "an MO answered 503 is sent again with the same id (the gateway must dedupe on id)", mos)
    got = k.wait_received(1, match=lambda m: m.to == "254700000207")
    s.eq([m.text for m in got], ["Salio lako: KES 0"], "only the 200 answer's body reaches the subscriber")

    # ---- the gateway down
    gw.stop()
    k.mo("254700000204", SHORT_CODE, "RETRY")
    first_fail = k.wait_log("smsbox.log", r"Couldn't fetch <[^>]*from=254700000204")
    s.check(first_fail, "with the gateway down, smsbox's MO callback fails")
    gw.start()
    mos = gw.wait("mo", lambda q: q.get("from") == "254700000204", timeout=10)
    s.eq([q.get("text") for q in mos], ["RETRY"], "the failed MO callback is retried and reaches the gateway once it is back")

    gw.stop()
    k.mo("254700000205", SHORT_CODE, "STATUS")
    gave_up = k.wait_log("smsbox-access.log", r"sender:254700000205 .*reply: -1", timeout=15)
    s.check(gave_up, "smsbox gives up on the MO after its retries")
    gw.start()
    # A marker MT after the give-up: anything smsbox sent the subscriber because of it left before the marker.
    k.sendsms("254700000299", "marker")
    k.wait_received(1, match=lambda m: m.to == "254700000299")
    sent_back = [m for m in k.received() if m.to == "254700000205"]
    s.eq(sent_back, [], "the subscriber gets no 'Could not fetch content' (or any) message when the gateway is down")

    # ---- the SMPP link: routing by smsc-id, USSD TLVs both ways
    bound = wait_for(smsc.bound, timeout=10)
    s.check(bound and smsc.binds[0] == ("hifadhi", "hf-sim"),
            "the SMPP link binds as a transceiver with the configured system id", smsc.binds)
    s.eq(k.sendsms("254700000301", "kwa SMPP", smsc="smpp", meta_data="?smpp?ussd_service_op=2"), 202,
         "sendsms with smsc=smpp and USSD meta-data")
    subs = wait_for(lambda: [m for m in smsc.submits if m["dst"] == "254700000301"])
    s.check(subs and subs[0]["text"] == b"kwa SMPP" and subs[0]["tlvs"].get(0x0501) == b"\x02",
            "smsc=smpp routes the MT to the SMPP link, with ussd_service_op = 2 as a 1-byte TLV", subs)
    k.sendsms("254700000302", "kwa fakesmsc")
    got = k.wait_received(1, match=lambda m: m.to == "254700000302")
    s.check(got and not [m for m in smsc.submits if m["dst"] == "254700000302"],
            "an MT without smsc= goes to fakesmsc, never to the SMPP link", smsc.submits)

    gw.replies["*384#"] = ("Karibu Hifadhi", {"X-Kannel-Meta-Data": "?smpp?ussd_service_op=17"})
    smsc.deliver("254700000303", SHORT_CODE, "*384#", {0x0501: b"\x01", 0x1383: b"\x12\x34"})
    mos = gw.wait("mo", lambda q: q.get("from") == "+254700000303")
    q = mos[0] if mos else {}
    s.eq((q.get("text"), q.get("smsc")), ("*384#", "smpp"),
         "a USSD MO from the SMPP link reaches the gateway (an international sender gets a leading +)")
    meta = q.get("meta", "")
    s.check("?smpp?" in meta and "ussd_service_op=%01" in meta and "its_session_info=" in meta,
            "its meta parameter carries ?smpp?ussd_service_op=%01 and its_session_info", repr(meta))
    subs = wait_for(lambda: [m for m in smsc.submits if m["dst"] == "254700000303"])
    s.check(subs and subs[0]["text"] == b"Karibu Hifadhi" and subs[0]["tlvs"].get(0x0501) == b"\x11",
            "the reply goes back on the SMPP link with ussd_service_op = 17 from X-Kannel-Meta-Data", subs)

    # ---- queued MT and pending delivery reports survive kill -9 of bearerbox
    dlr_url = f"http://127.0.0.1:{gw.port}/kannel/dlr?ref=MT-0077&status=%d&smsc=%i&fid=%F&answer=%A"
    s.eq(k.sendsms("254700000304", "ripoti baadaye", smsc="smpp", dlr_url=dlr_url), 202,
         "an MT with a dlr-url on the SMPP link")
    subs = wait_for(lambda: [m for m in smsc.submits if m["dst"] == "254700000304"])
    smpp_id = f"stub{smsc.submits.index(subs[0]) + 1}" if subs else "?"
    acked = gw.wait("dlr", lambda q: q.get("ref") == "MT-0077")
    s.check(subs and subs[0]["registered_delivery"] and [q.get("status") for q in acked] == ["8"],
            "it asks the SMSC for a receipt and reports 8 (accepted by the SMSC)", (subs, acked))
    k.stop_fakesmsc()
    before = len(k.received())
    crash_texts = [f"crash-{i:02d} malipo" for i in range(20)]
    codes = [k.sendsms(f"2547000004{i:02d}", t) for i, t in enumerate(crash_texts)]
    s.eq(set(codes), {202}, "20 MT accepted while the operator link is down")
    queued = wait_for(lambda: (k.store_size() or 0) >= 20)
    s.check(queued, "they wait in bearerbox's store", f"store size {k.store_size()}")
    killed = k.kill_bearerbox()
    s.check(killed and not k.pids()["bearerbox"], "bearerbox killed with SIGKILL", killed)
    k.restart_bearerbox()
    got = k.wait_received(20, timeout=30, match=lambda m: m.text in crash_texts)
    texts = [m.text for m in got]
    dups = len(texts) - len(set(texts))
    s.eq(sorted(set(texts)), crash_texts, f"all 20 queued MT arrive after the restart ({dups} duplicated)")
    print(f"# crash: {len(texts)} deliveries of 20 queued MT, {dups} duplicates; "
          f"{len(k.received()) - before - len(texts)} other re-deliveries", flush=True)
    s.eq(k.status()[0], 0, "after the restart all three boxes run again")
    rebound = wait_for(lambda: len(smsc.binds) >= 2 and smsc.bound(), timeout=10)
    s.check(rebound, "the SMPP link binds again after the restart", smsc.binds)
    receipt = (f"id:{smpp_id} sub:001 dlvrd:001 submit date:2611280000 done date:2611280000 stat:DELIVRD "
               "err:000 text:ripoti baadaye")
    smsc.deliver("254700000304", "384", receipt, {0x001E: smpp_id.encode() + b"\0", 0x0427: b"\x02"}, esm_class=0x04)
    final = gw.wait("dlr", lambda q: q.get("ref") == "MT-0077" and q.get("status") == "1")
    s.eq([(q.get("smsc"), q.get("fid")) for q in final], [("smpp", smpp_id)],
         "the receipt that comes after the restart still finds its MT (DLR kept in SQLite): status 1 with our "
         "ref and the SMSC's message id")
    print(f"# SMPP DLR callbacks: {[q for q in gw.dlr if q.get('ref') == 'MT-0077']}", flush=True)
    s.eq(k.sendsms("254700000499", "baada ya ajali"), 202, "sendsms works after the restart")
    s.check(k.wait_received(1, match=lambda m: m.to == "254700000499"), "and MT are delivered again")

    # ---- stop leaves nothing running
    k.stop()
    left = k.pids()
    s.eq(left, {"bearerbox": [], "fakesmsc": [], "smsbox": []}, "deploy/kannel.sh stop leaves no box running")
    s.eq(k.status()[0], 3, "status says stopped (exit 3)")
    s.check(not any((k.dir / f"{b}.pid").exists() for b in left), "the pid files are removed")
    r = k.script("stop")
    s.check(r.returncode == 0, "stop when stopped is a no-op")
    gw.stop()
    smsc.close()
    print(f"# suite time {time.monotonic() - t0:.1f}s", flush=True)
