#!/usr/bin/python3
"""A third-party XMPP client peer (slixmpp) driven by the Go integration tests.

Run with Debian's python3-slixmpp (1.8.3):

    /usr/bin/python3 scripts/slixpeer.py --jid bob@localhost/RES \
        --password bobpass --addr 127.0.0.1:25222

Line protocol: one JSON object per line, stdout flushed after every line,
logging on stderr only.

stdout events
  {"event":"ready","jid":"<full jid>"}        once bound and presence sent
  {"event":"request","id":..,"from":..,"to":..,"type":"get"|"set","ns":..,"name":..}
                                               every incoming IQ get/set
  {"event":"response","id":..,"type":"result"|"error"|"timeout",
   "payload":"<result child XML or empty>","error_type":..,"condition":..,
   "text":..,"app_ns":..,"app_name":..}         exactly one per command
  {"event":"error","error":".."}               connection/auth failure (exit 1)
  {"event":"disconnected","reason":..,"stream_error":"<condition>: <text>" or ""}
                                               stream lost while stdin still open (exit 1),
                                               e.g. "conflict: Replaced by new connection"

stdin commands
  {"op":"get"|"set","to":"<jid>","id":"<id>","xml":"<payload element>","timeout":seconds}
  "id" becomes the stanza id (generated when absent or empty) and is echoed
  in the response; ids of concurrent commands must differ. "to" may be empty
  (no 'to' attribute). "xml" may be empty (IQ with no child). "timeout"
  defaults to 10 s. A command that cannot be parsed gets a response of
  type "error" with condition "bad-command".

Incoming IQs
  get {urn:example:peer}echo  -> result with <echo xmlns='urn:example:peer'>same text</echo>
  get {urn:example:silent}hang -> never answered
  anything else               -> slixmpp's default: cancel/feature-not-implemented
                                 ("No handlers registered for this request.")

EOF on stdin: disconnect and exit 0 (commands still pending get no response).
"""

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import tostring
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
PEER_NS = "urn:example:peer"
SILENT_NS = "urn:example:silent"

_out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def split_tag(tag):
    """'{ns}name' -> (ns, name)."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def first_child(xml):
    for child in xml:
        return child
    return None


def serialize(el):
    if el is None:
        return ""
    return tostring(el, top_level=True)


class MatchGetChild(MatcherBase):
    """Matches an <iq type='get'> whose first child is {ns}name."""

    def match(self, stanza):
        xml = stanza.xml
        if split_tag(xml.tag)[1] != "iq" or xml.get("type") != "get":
            return False
        child = first_child(xml)
        return child is not None and child.tag == self._criteria


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ready = asyncio.Event()
        self.closing = False
        self.tasks = set()
        self.exit_code = 0
        self.stream_error = ""

        self["feature_mechanisms"].unencrypted_plain = True

        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("stream_error", self.on_stream_error)

        # Log every incoming get/set without taking it over: a filter does not
        # count as a handler, so slixmpp's default reply still applies.
        self.add_filter("in", self.log_request)

        self.register_handler(Callback(
            "peer echo", MatchGetChild("{%s}echo" % PEER_NS), self.on_echo))
        self.register_handler(Callback(
            "peer hang", MatchGetChild("{%s}hang" % SILENT_NS), self.on_hang))

    # --- connection -------------------------------------------------------

    async def on_session_start(self, _event):
        self.send_presence()
        self.ready.set()
        emit({"event": "ready", "jid": str(self.boundjid.full)})

    def on_failed_auth(self, _event):
        self.fail("authentication failed")

    def on_connection_failed(self, err):
        self.fail("connection failed: %s" % err)

    def on_stream_error(self, err):
        self.stream_error = "%s: %s" % (err["condition"], err["text"])

    def on_disconnected(self, reason):
        if not self.closing:
            self.closing = True
            self.exit_code = 1
            emit({"event": "disconnected", "reason": str(reason or ""),
                  "stream_error": self.stream_error})

    def fail(self, msg):
        if self.closing:
            return
        self.closing = True
        self.exit_code = 1
        emit({"event": "error", "error": msg})
        self.disconnect(wait=0.5)
        self.loop.call_later(1.0, self._set_disconnected_future)

    def on_stdin_eof(self):
        if self.closing:
            return
        self.closing = True
        for t in list(self.tasks):
            t.cancel()
        self.disconnect(wait=1.0, ignore_send_queue=True)

    # --- incoming ----------------------------------------------------------

    def log_request(self, stanza):
        xml = stanza.xml
        if split_tag(xml.tag)[1] == "iq" and xml.get("type") in ("get", "set"):
            child = first_child(xml)
            ns, name = split_tag(child.tag) if child is not None else ("", "")
            emit({
                "event": "request",
                "id": xml.get("id", ""),
                "from": xml.get("from", ""),
                "to": xml.get("to", ""),
                "type": xml.get("type"),
                "ns": ns,
                "name": name,
            })
        return stanza

    def on_echo(self, iq):
        text = first_child(iq.xml).text or ""
        reply = iq.reply(clear=True)
        echo = ET.Element("{%s}echo" % PEER_NS)
        echo.text = text
        reply.append(echo)
        reply.send()

    def on_hang(self, iq):
        logging.info("swallowing hang request %s", iq["id"])

    # --- commands ----------------------------------------------------------

    def submit(self, line):
        task = asyncio.ensure_future(self.run_command(line))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run_command(self, line):
        resp = {
            "event": "response", "id": "", "type": "error", "payload": "",
            "error_type": "", "condition": "", "text": "",
            "app_ns": "", "app_name": "",
        }
        try:
            cmd = json.loads(line)
            resp["id"] = str(cmd.get("id") or "")
            op = cmd.get("op")
            if op not in ("get", "set"):
                raise ValueError("op must be get or set, not %r" % (op,))
            payload = ET.fromstring(cmd["xml"]) if cmd.get("xml") else None
            timeout = float(cmd.get("timeout") or 10)
        except Exception as e:  # noqa: BLE001 - report any malformed command
            resp["condition"] = "bad-command"
            resp["text"] = str(e)
            emit(resp)
            return

        await self.ready.wait()
        iq = self.make_iq(ito=cmd.get("to") or None, itype=op)
        iq["id"] = resp["id"] or self.new_id()
        resp["id"] = resp["id"] or iq["id"]
        if payload is not None:
            iq.append(payload)
        try:
            result = await iq.send(timeout=timeout)
            resp["type"] = "result"
            resp["payload"] = serialize(first_child(result.xml))
        except IqTimeout:
            resp["type"] = "timeout"
        except IqError as e:
            fill_error(resp, e.iq.xml)
        emit(resp)


def fill_error(resp, iq_xml):
    """Reads type/condition/text/app element from the raw <error/> child."""
    resp["type"] = "error"
    err = None
    for child in iq_xml:
        if split_tag(child.tag)[1] == "error":
            err = child
            break
    if err is None:
        return
    resp["error_type"] = err.get("type", "")
    for child in err:
        ns, name = split_tag(child.tag)
        if ns == STANZAS_NS:
            if name == "text":
                resp["text"] = child.text or ""
            elif not resp["condition"]:
                resp["condition"] = name
        elif not resp["app_ns"]:
            resp["app_ns"], resp["app_name"] = ns, name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jid", required=True, help="full JID, e.g. bob@localhost/res")
    ap.add_argument("--password", required=True)
    ap.add_argument("--addr", default="127.0.0.1:25222", help="host:port of c2s")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args()

    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="slixpeer %(levelname)s %(name)s: %(message)s")

    host, _, port = args.addr.rpartition(":")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    peer = Peer(args.jid, args.password)

    def reader():
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                loop.call_soon_threadsafe(peer.submit, line)
        loop.call_soon_threadsafe(peer.on_stdin_eof)

    threading.Thread(target=reader, name="stdin", daemon=True).start()

    peer.connect(address=(host, int(port)), force_starttls=False, disable_starttls=True)
    loop.run_until_complete(peer.disconnected)
    # The stdin thread may still be blocked in read(): a normal interpreter
    # shutdown would abort on its buffer lock, so leave at once.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(peer.exit_code)


if __name__ == "__main__":
    main()
