#!/usr/bin/python3
"""RPC abuse under a real picoflowd (issue 14: malformed inputs per method,
floods, slow and non-reading clients; docs/rpc.md, "Transport" and "Errors").

A picoflowd on a temporary socket and state directory gets a small workflow
(submitted with picoflowctl) and one run of it, then:

1. Malformed requests for EVERY method of docs/rpc.md's method list (read from
   the document, so a new method is covered by itself; an empty list, or a
   listed method without its section, is a failure), all pipelined on one
   connection, each followed by a daemon.version "sentinel" that ends its
   answers: params that are not an object (an array: -32602; a string, a
   number, null, true: -32600); unknown params, among them an empty name, one
   with a NUL and one of 100 KB (-32602); missing required params, as {} and
   as no params at all (-32602); every documented param (the table of the
   method's section) with values of the wrong JSON type (-32602, its message
   starting with the method's name) and with odd values of its type (2**63,
   2**64, -2**63-1, 10**30 and other huge integers, negative and zero ids,
   1.0; empty, blank and 100 KB strings, escaped NUL / newline / ESC / C1 /
   U+2028 / DEL inside strings: any answer but the ones below); odd request
   ids (negative, float, 2**64, "", with an escaped NUL or newline, 100 KB,
   null: echoed as sent); notifications with bad params (never answered).
   Params a method requires besides the one under test get values that name
   nothing (run 987654321, workflow 'no-such-workflow'), so no case starts or
   changes anything. The connection must stay open, and every request with an
   id get exactly one answer line with that id: well-formed JSON-RPC 2.0
   (exactly one of result/error, an integer code, a string message), never
   -32603 (a daemon bug) nor -32601 (a documented method unknown), nor
   -32600/-32700 where the request is valid JSON-RPC; every error message (and
   diagnostic message) one line, without any control character (C0, DEL or
   C1). A string param holding raw bytes on the wire (NUL, TAB, invalid UTF-8:
   0xff, overlong, truncated, an encoded surrogate, past U+10FFFF) gets one
   -32700 with id null; a raw newline (or CR LF) splits the line in two, each
   a -32700; a raw DEL is valid JSON and answered with the request's id.
2. Framing, each on a new connection followed by a sentinel: a line of
   exactly 1 MiB is served, one of 1 MiB + 1 right after it gets -32600 (id
   null) and the connection is closed (the sentinel is never answered);
   invalid JSON, two values on a line, a number past any double (-32700);
   JSON that is a string, a number, null, a batch, an empty batch (-32600);
   10,000 nested arrays, objects, unclosed brackets, and a request nesting
   10,000 deep in its params (-32700), with the boundary: a request 64 deep is
   served (-32602 with its id), 65 deep is a -32700; lines of spaces or tabs
   (-32700); empty and CR-only lines (ignored: no answer); NUL bytes, a NUL
   in the method name, and a NUL after a complete request (-32700: the line is
   not JSON); an id that is an object (-32600, id null); jsonrpc 1.0 or
   missing, a method that is a number or missing (-32600 with the id); an
   unknown method (-32601). Then: a request in 1-byte writes (answered); a
   last request cut short by EOF (answered, then closed); 5,000 pipelined
   daemon.version written at once (all answered, in order); clients that go
   away mid-line, at once, or with 1,000 answers unread; a flood of
   connections of our uid, each served until the one past the limit (at most
   the 65th: 64 per uid) gets -32004 with id null and is closed; the
   checks after it wait until the daemon has seen the flood close.
3. A non-reading client: a connection sends 2,000 workflow.get and never
   reads; meanwhile daemon.status on another connection is answered; then it
   is closed. A second non-reader sends workflow.get until the daemon cuts it
   off, as docs/rpc.md says it must once more than 8 MiB of answers wait (at
   most 200,000 requests). The daemon's peak RSS (VmHWM of /proc/PID/status,
   which covers every phase) must stay under RSS_BOUND_MIB (64 MiB); the
   figures are printed. A picoflowd built with AddressSanitizer (build-asan)
   is not held to the bound, and the line says so: shadow memory and the
   quarantine of freed memory (up to 256 MiB) make its RSS several times the
   code's (279 to 288 MiB measured); tests/sanitizers.py.
4. After all of it: the daemon is alive, answers daemon.status (picoflowctl
   too), a run of the workflow succeeds (run.start, then run.wait), and its
   open fd count (/proc/PID/fd, counted while one probe connection is its only
   one) is within 2 of the count before the abuse.

Checks are gathered and all reported at the end. Under an emulator (cross
tests) the /proc figures are the emulator's: the RSS and fd checks are left
out, the rest runs. Every wait has a deadline that only ends a hang; no speed
is asserted. Usage:
  rpc_abuse_test.py PICOFLOWD PICOFLOWCTL
"""

import ctypes
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from exec_wrapper import EMULATED, command  # noqa: E402
from sanitizers import address_sanitized  # noqa: E402

DEADLINE_S = 120
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'docs', 'rpc.md')
MAX_LINE = 1024 * 1024          # docs/rpc.md, "Framing"
MAX_DEPTH = 64                  # docs/rpc.md, "Framing"
PENDING_LIMIT = 8 * 1024 * 1024  # docs/rpc.md, "Limits": a non-reader is cut off past this
CONNECTION_LIMIT = 64           # docs/rpc.md, "Limits": per uid
RSS_BOUND_MIB = 64
NON_READER_REQUESTS = 2000
CUT_OFF_MAX_REQUESTS = 200000
PIPELINED = 5000
BIG = 100 * 1024

WORKFLOW = """name: abuse
tasks:
  - name: hello
    type: shell
    config: { command: "echo hello" }
  - name: after
    type: shell
    depends_on: [hello]
    config: { command: "true" }
"""

# Values for params a method requires besides the one under test: they name
# nothing, so a case that gets past the param checks changes nothing.
FILLER = {'integer': 987654321, 'string': 'no-such-workflow', 'bool': False}


class Hang(Exception):
    pass


def die_with_parent():
    # The daemon must not outlive a test that is killed itself.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---- docs/rpc.md ------------------------------------------------------------

def documented_methods(text):
    """{method: [(param, type, required)]} from the method list under "- [Methods]"
    and each method's section (its `| param | type | required | ...` table)."""
    listing = re.search(r'^- \[Methods\]\(#methods\):\n((?:[ \t]+\S.*\n)+)', text, re.M)
    if listing is None:
        raise AssertionError('docs/rpc.md: no "- [Methods](#methods):" list')
    names = []
    for entry in re.findall(r'\[([^\]]+)\]\(#', listing.group(1)):
        names += [n.strip() for n in entry.split('/')]
    if not names:
        raise AssertionError('docs/rpc.md: the method list is empty')
    body = text.split('\n## Methods\n', 1)[1].split('\n## Notifications\n', 1)[0]
    sections = {}
    for part in re.split(r'^### ', body, flags=re.M)[1:]:
        heading, _, rest = part.partition('\n')
        for name in heading.split(','):
            sections[name.strip()] = rest
    methods = {}
    for name in names:
        if name not in sections:
            raise AssertionError(f'docs/rpc.md: {name} is listed but has no section')
        params = []
        table = re.search(r'^\| param \| type \| required \|.*\n\|[-| ]+\|\n((?:\|.*\n)+)',
                          sections[name], re.M)
        if table:
            for row in table.group(1).splitlines():
                cells = [c.strip() for c in row.strip('|').split('|')]
                pname = cells[0].strip('`')
                required = cells[2]
                params.append((pname, cells[1], 'yes' if required == 'yes' else
                               'one' if required.startswith('one of') else 'no'))
        methods[name] = params
    return methods


# ---- the wire -------------------------------------------------------------------

NOTIFY = object()  # as a request id: no id, a notification


def request(method, params=None, rid=1, with_params=True):
    msg = {'jsonrpc': '2.0', 'method': method}
    if rid is not NOTIFY:
        msg['id'] = rid
    if with_params:
        msg['params'] = params
    return json.dumps(msg, separators=(',', ':')).encode() + b'\n'


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(DEADLINE_S)
    s.connect(path)
    return s


def exchange(sock, data, stop=None, what='answers'):
    """Writes `data` while reading; calls stop(line) for each line received and
    returns (lines, eof, send_error) once it says True or the daemon closes."""
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    lines, buf, sent, send_error, eof = [], b'', 0, None, False
    view = memoryview(data)
    end = time.monotonic() + DEADLINE_S
    try:
        while True:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if sent < len(data) and
                                             send_error is None else 0)
            sel.register(sock, events)
            ready = sel.select(timeout=1.0)
            sel.unregister(sock)
            if time.monotonic() > end:
                raise Hang(f'no end of {what} within {DEADLINE_S} s ({len(lines)} lines, '
                           f'{sent} of {len(data)} bytes sent)')
            for _, mask in ready:
                if mask & selectors.EVENT_WRITE:
                    try:
                        sent += sock.send(view[sent:sent + 262144])
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        send_error = e
                if mask & selectors.EVENT_READ:
                    try:
                        chunk = sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        chunk = b''
                    if not chunk:
                        eof = True
                        if buf:
                            lines.append(buf)
                        return lines, eof, send_error
                    buf += chunk
                    *new, buf = buf.split(b'\n')
                    for line in new:
                        lines.append(line)
                        if stop is not None and stop(line):
                            return lines, eof, send_error
    finally:
        sel.close()
        sock.settimeout(DEADLINE_S)


def call(path, method, params=None):
    with connect(path) as s:
        lines, _, _ = exchange(s, request(method, params or {}), lambda _: True, method)
    reply = json.loads(lines[0]) if lines else {}
    if 'result' not in reply:
        raise AssertionError(f'{method}: {lines}')
    return reply['result']


def single_line(text):
    return not any(unicodedata.category(c) == 'Cc' for c in text)


def well_formed(line):
    """(message, None) or (None, why the line is not a well-formed answer)."""
    try:
        msg = json.loads(line.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as e:
        return None, f'not JSON ({e}): {line[:200]!r}'
    if not isinstance(msg, dict) or msg.get('jsonrpc') != '2.0' or 'id' not in msg:
        return None, f'not a JSON-RPC 2.0 answer: {line[:200]!r}'
    if ('result' in msg) == ('error' in msg) or set(msg) - {'jsonrpc', 'id', 'result', 'error'}:
        return None, f'not exactly one of result/error: {line[:200]!r}'
    if 'error' in msg:
        err = msg['error']
        if (not isinstance(err, dict) or type(err.get('code')) is not int
                or not isinstance(err.get('message'), str)
                or set(err) - {'code', 'message', 'data'}):
            return None, f'malformed error object: {line[:200]!r}'
        texts = [err['message']]
        data = err.get('data')
        if isinstance(data, dict):
            texts += [d.get('message', '') for d in data.get('diagnostics', [])
                      if isinstance(d, dict)]
        for text in texts:
            if not single_line(text):
                return None, f'error message with a control character: {text[:300]!r}'
    return msg, None


def same_id(a, b):
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return type(a) is type(b) and a == b
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b


# ---- 1. malformed requests per method ---------------------------------------

class Case:
    """Bytes to send and what must answer them before the sentinel after them:
    ('id', id, code or None: any but -32603/-32601/-32600/-32700), ('null', n, code):
    n errors with id null, or ('none',): nothing."""

    def __init__(self, label, data, expect, method=None):
        self.label, self.data, self.expect, self.method = label, data, expect, method


def wrong_types(kind):
    """[(label, value, strict)]: strict values are of the wrong JSON type (-32602)."""
    every = [('string "1"', '1', True), ('empty string', '', True),
             ('integer 1', 1, True), ('integer 0', 0, True), ('integer -1', -1, True),
             ('float 1.5', 1.5, True), ('float 1e300', 1e300, True), ('true', True, True),
             ('false', False, True), ('null', None, True), ('object', {'a': 1}, True),
             ('empty object', {}, True), ('array', [1], True), ('empty array', [], True)]
    if kind == 'integer':
        wrong = [v for v in every if not (isinstance(v[1], int) and not isinstance(v[1], bool))]
        odd = [('2**63', 2 ** 63, False), ('2**64', 2 ** 64, False), ('-2**63', -2 ** 63, False),
               ('-2**63-1', -2 ** 63 - 1, False), ('10**30', 10 ** 30, False),
               ('2**31', 2 ** 31, False), ('-2**31-1', -2 ** 31 - 1, False),
               ('2**53+1', 2 ** 53 + 1, False), ('negative id -1', -1, False),
               ('-987654321', -987654321, False), ('zero', 0, False), ('float 1.0', 1.0, False)]
        return wrong + odd
    if kind == 'string':
        wrong = [v for v in every if not isinstance(v[1], str)]
        odd = [('empty string', '', False), ('spaces', '   ', False),
               ('100 KB string', 'x' * BIG, False), ('100 KB of euro signs', '\u20ac' * (BIG // 3),
                                                      False),
               ('escaped NUL', 'a\u0000b', False), ('escaped newline', 'a\nb\r\nc', False),
               ('escaped ESC', '\x1b[2J\x1b]0;x\x07', False),
               ('escaped C1 and U+2028', '\x85\x9b\u2028\u2029', False),
               ('escaped DEL', 'a\x7fb', False), ('BOM', '\ufeffabuse', False),
               ('astral', '\U0001f600', False), ('path', '../../../../etc/passwd', False),
               ('format', '%s%n{}{0}', False)]
        return wrong + odd
    if kind == 'bool':
        return [v for v in every if not isinstance(v[1], bool)]
    return [(label, value, False) for label, value, _ in every]


# Raw bytes inside a string on the wire: (label, bytes, answers: (count, code) or None
# for "valid JSON, answered with the request's id").
RAW = [('raw NUL', b'a\x00b', (1, -32700)), ('raw TAB', b'a\tb', (1, -32700)),
       ('raw 0xff', b'a\xffb', (1, -32700)), ('raw overlong NUL', b'a\xc0\x80b', (1, -32700)),
       ('raw truncated UTF-8', b'a\xe2\x82', (1, -32700)),
       ('raw UTF-8 surrogate', b'\xed\xa0\x80', (1, -32700)),
       ('raw past U+10FFFF', b'\xf4\x90\x80\x80', (1, -32700)),
       ('raw newline', b'a\nb', (2, -32700)), ('raw CR LF', b'a\r\nb', (2, -32700)),
       ('raw DEL', b'a\x7fb', None)]


def method_cases(methods):
    cases = []
    next_id = [1000]

    def rid():
        next_id[0] += 1
        return next_id[0]

    for method, params in methods.items():
        required = [(p, t) for p, t, r in params if r == 'yes']
        one_of = [(p, t) for p, t, r in params if r == 'one']

        def base(skip):
            """The params a method needs besides `skip`, filled with values naming nothing."""
            out = {p: FILLER.get(t, 'x') for p, t in required if p != skip}
            if one_of and skip not in [p for p, _ in one_of]:
                p, t = one_of[0]
                out[p] = FILLER.get(t, 'x')
            return out

        def add(label, data, expect):
            cases.append(Case(f'{method}: {label}', data, expect, method))

        # params that are not an object
        for label, value, code in [('params array', [], -32602), ('params [1, 2]', [1, 2], -32602),
                                   ('params string', 'x', -32600), ('params number', 7, -32600),
                                   ('params null', None, -32600), ('params true', True, -32600)]:
            i = rid()
            add(label, request(method, value, i), ('id', i, code))
        # unknown params
        for label, extra in [('unknown param', {'bogus': 1}), ('empty param name', {'': 1}),
                             ('upper-case name', {method.upper(): 1}),
                             ('param name with NUL', {'a\u0000b': 1}),
                             ('100 KB param name', {'p' * BIG: 1})]:
            i = rid()
            add(label, request(method, dict(base(None), **extra), i), ('id', i, -32602))
        # missing required params
        if required or one_of:
            i = rid()
            add('params {}', request(method, {}, i), ('id', i, -32602))
            i = rid()
            add('no params', request(method, rid=i, with_params=False), ('id', i, -32602))
        # odd request ids, on a request that is refused
        for label, value in [('id -1', -1), ('id 1.5', 1.5), ('id 2**64', 2 ** 64),
                             ('id -2**63', -2 ** 63), ('id ""', ''), ('id with NUL', 'a\u0000b'),
                             ('id with newline', 'a\nb'), ('id null', None),
                             ('100 KB id', 'i' * BIG)]:
            add(label, request(method, dict(base(None), bogus=1), value), ('id', value, -32602))
        # notifications with bad params: never answered
        add('notification, params array', request(method, [], NOTIFY), ('none',))
        add('notification, unknown param', request(method, {'bogus': 1}, NOTIFY), ('none',))
        # each documented param, of the wrong type and odd values
        for pname, ptype, _ in params:
            for label, value, strict in wrong_types(ptype):
                i = rid()
                add(f"param '{pname}' {label}",
                    request(method, dict(base(pname), **{pname: value}), i),
                    ('id', i, -32602 if strict else None))
            if ptype == 'string':
                for label, raw, answers in RAW:
                    i = rid()
                    line = request(method, dict(base(pname), **{pname: '@@RAW@@'}), i)
                    line = line.replace(b'@@RAW@@', raw)
                    expect = ('id', i, None) if answers is None else ('null',) + answers
                    add(f"param '{pname}' {label}", line, expect)
    return cases


def run_cases(sock_path, cases, problems, counts):
    """Sends every case, each followed by a sentinel, pipelined on one connection."""
    data = []
    for n, case in enumerate(cases):
        case.sentinel = f'sentinel-{n}'
        data.append(case.data)
        data.append(request('daemon.version', {'protocol': 1}, case.sentinel))
    last = cases[-1].sentinel.encode()
    with connect(sock_path) as s:
        lines, eof, send_error = exchange(
            s, b''.join(data), lambda line: b'"id":"' + last + b'"' in line, 'the method cases')
    if eof or send_error:
        problems.append(f'method cases: the daemon closed the connection ({send_error}) after '
                        f'{len(lines)} lines; last: {lines[-1][:200] if lines else None!r}')
    n = 0
    segment = []
    for line in lines:
        msg, why = well_formed(line)
        if msg is not None and isinstance(msg['id'], str) and msg['id'].startswith('sentinel-'):
            if n >= len(cases) or msg['id'] != cases[n].sentinel:
                problems.append(f'sentinel {msg["id"]} out of order (expected case {n})')
                break
            check_case(cases[n], segment, problems, counts)
            n += 1
            segment = []
            continue
        segment.append((line, msg, why))
    if n != len(cases):
        problems.append(f'method cases: only {n} of {len(cases)} were answered')


def check_case(case, segment, problems, counts):
    counts['lines'] += 1 + 1  # the case and its sentinel
    if case.expect[0] == 'none':
        counts['notifications'] += 1
    for line, msg, why in segment:
        counts['answers'] += 1
        if why:
            problems.append(f'{case.label}: {why}')
        elif 'error' in msg:
            counts[msg['error']['code']] = counts.get(msg['error']['code'], 0) + 1
    counts['answers'] += 1  # the sentinel's
    kind = case.expect[0]
    got = [msg for _, msg, why in segment if why is None]
    if len(got) != len(segment):
        return
    if kind == 'none':
        if segment:
            problems.append(f'{case.label}: a notification was answered: {segment[0][0][:200]!r}')
        return
    if kind == 'null':
        _, count, code = case.expect
        shown = [json.dumps(m)[:200] for m in got]
        if len(got) != count or any(m['id'] is not None or 'error' not in m or
                                    m['error']['code'] != code for m in got):
            problems.append(f'{case.label}: wanted {count} x {code} with id null, got {shown}')
        return
    _, want_id, code = case.expect
    if len(got) != 1:
        problems.append(f'{case.label}: {len(got)} answers, not 1: '
                        f'{[json.dumps(m)[:200] for m in got]}')
        return
    msg = got[0]
    if not same_id(msg['id'], want_id):
        problems.append(f'{case.label}: answered with id {msg["id"]!r}, not {want_id!r}')
        return
    err = msg.get('error')
    if code is not None:
        if err is None or err['code'] != code:
            problems.append(f'{case.label}: wanted {code}, got {json.dumps(msg)[:300]}')
        elif code == -32602 and not err['message'].startswith(case.method + ':'):
            problems.append(f'{case.label}: -32602 message does not start with the method '
                            f'name: {err["message"][:200]!r}')
    elif err is not None and err['code'] in (-32603, -32601, -32600, -32700):
        problems.append(f'{case.label}: {json.dumps(msg)[:300]}')


# ---- 2. framing ---------------------------------------------------------------

def expect_lines(label, sock_path, data, want, problems, closes=False):
    """Sends data then a sentinel on a new connection; the answers before the
    sentinel's must be `want`: a list of (id, code or 'result'). With `closes`,
    the daemon must close the connection instead of answering the sentinel."""
    sentinel = b'{"jsonrpc":"2.0","id":"framing-sentinel","method":"daemon.version"}\n'
    with connect(sock_path) as s:
        lines, eof, _ = exchange(s, data + sentinel,
                                 lambda line: b'"framing-sentinel"' in line, label)
    got = []
    for line in lines:
        msg, why = well_formed(line)
        if why:
            problems.append(f'{label}: {why}')
            return 0
        if msg['id'] == 'framing-sentinel':
            if closes:
                problems.append(f'{label}: the connection was not closed: the request after '
                                f'it was answered')
            break
        got.append((msg['id'], msg['error']['code'] if 'error' in msg else 'result'))
    else:
        if not closes or not eof:
            problems.append(f'{label}: the connection was closed (answers: {got})')
    if got != want:
        problems.append(f'{label}: answers {got}, wanted {want}')
    return len(got)


def padded_version(rid, size):
    """A daemon.version request line of exactly `size` bytes without its '\\n'."""
    head = request('daemon.version', {'client': ''}, rid)[:-1]
    pad = size - len(head)
    return head.replace(b'"client":""', b'"client":"' + b'c' * pad + b'"') + b'\n'


def nested_request(depth):
    """A daemon.version request nesting exactly `depth` arrays/objects deep."""
    inner = depth - 2  # the request object and its params
    return (b'{"jsonrpc":"2.0","id":"deep","method":"daemon.version","params":{"client":'
            + b'[' * inner + b']' * inner + b'}}\n')


def framing_checks(sock_path, problems, counts):
    n = 0
    # The line limit: exactly 1 MiB is served; 1 MiB + 1 closes the connection.
    exact = padded_version('exact', MAX_LINE)
    over = padded_version('over', MAX_LINE + 1)
    assert len(exact) == MAX_LINE + 1 and len(over) == MAX_LINE + 2
    n += expect_lines('a line of exactly 1 MiB, then one of 1 MiB + 1', sock_path, exact + over,
                      [('exact', 'result'), (None, -32600)], problems, closes=True)
    # Not JSON, not an object, batches.
    for label, line, code in [
            ('invalid JSON', b'{"jsonrpc":"2.0","id":1,', -32700),
            ('two values on a line', request('daemon.version', {}, 2)[:-1] * 2 + b'\n', -32700),
            ('a number past any double', b'{"jsonrpc":"2.0","id":1e99999,"method":"x"}\n', -32700),
            ('a JSON string', b'"daemon.version"\n', -32600),
            ('a JSON number', b'12\n', -32600),
            ('null', b'null\n', -32600),
            ('a batch', b'[' + request('daemon.version', {}, 3)[:-1] + b']\n', -32600),
            ('an empty batch', b'[]\n', -32600),
            ('a batch of numbers', b'[1,2,3]\n', -32600),
            ('nesting 10,000 deep', b'[' * 10000 + b']' * 10000 + b'\n', -32700),
            ('objects 10,000 deep', b'{"a":' * 10000 + b'1' + b'}' * 10000 + b'\n', -32700),
            ('10,000 unclosed brackets', b'[' * 10000 + b'\n', -32700),
            ('a line of spaces', b' ' * 1000 + b'\n', -32700),
            ('a line of tabs', b'\t\t\t\n', -32700),
            ('NUL bytes', b'\0' * 100 + b'\n', -32700),
            ('a NUL in the method name', b'{"jsonrpc":"2.0","id":4,"method":"daemon.\0version"}\n',
             -32700)]:
        if not line.endswith(b'\n'):
            line += b'\n'
        n += expect_lines(label, sock_path, line, [(None, code)], problems)
    # A NUL byte after a complete request makes the line not JSON (docs/rpc.md:
    # -32700). nlohmann's lexer takes '\0' for the end of its input: picoflowd
    # ran the request and ignored the rest until ParseJson refused NULs.
    n += expect_lines('a NUL after a complete request (not JSON)', sock_path,
                      request('daemon.version', {}, 5)[:-1] + b'\0{garbage\n',
                      [(None, -32700)], problems)
    # An id the daemon cannot read.
    n += expect_lines('an object as id', sock_path,
                      b'{"jsonrpc":"2.0","id":{},"method":"daemon.version"}\n',
                      [(None, -32600)], problems)
    for label, line in [('jsonrpc 1.0', b'{"jsonrpc":"1.0","id":6,"method":"daemon.version"}\n'),
                        ('no jsonrpc', b'{"id":6,"method":"daemon.version"}\n'),
                        ('a method that is a number', b'{"jsonrpc":"2.0","id":6,"method":5}\n'),
                        ('no method', b'{"jsonrpc":"2.0","id":6}\n')]:
        n += expect_lines(label, sock_path, line, [(6, -32600)], problems)
    n += expect_lines('an unknown method', sock_path, request('daemon.shutdown', {}, 7),
                      [(7, -32601)], problems)
    # The depth limit, inside a valid request: 64 is served, 65 is not.
    n += expect_lines('a request 64 deep', sock_path, nested_request(MAX_DEPTH),
                      [('deep', -32602)], problems)
    n += expect_lines('a request 65 deep', sock_path, nested_request(MAX_DEPTH + 1),
                      [(None, -32700)], problems)
    n += expect_lines('a request 10,000 deep', sock_path, nested_request(10000),
                      [(None, -32700)], problems)
    # Empty and CR-only lines are ignored.
    n += expect_lines('empty and CR-only lines', sock_path, b'\n\n\r\n\n', [], problems)
    counts['framing'] = n

    # A slow client: one request in 1-byte writes.
    with connect(sock_path) as s:
        for b in request('daemon.version', {'protocol': 1}, 'slow'):
            s.sendall(bytes([b]))
            time.sleep(0.001)
        lines, _, _ = exchange(s, b'', lambda _: True, 'the slow request')
    if not lines or not same_id(json.loads(lines[0]).get('id'), 'slow'):
        problems.append(f'a request in 1-byte writes: answered {lines[:1]}')

    # A last request cut short by EOF is answered, then the connection closes.
    with connect(sock_path) as s:
        s.sendall(request('daemon.version', {}, 'cut')[:-1])
        s.shutdown(socket.SHUT_WR)
        lines, eof, _ = exchange(s, b'', None, 'the answer to a request cut by EOF')
    if len(lines) != 1 or not same_id(json.loads(lines[0]).get('id'), 'cut') or not eof:
        problems.append(f'a request cut by EOF: {lines}, closed {eof}')

    # 5,000 pipelined requests written at once: all answered, in order.
    data = b''.join(request('daemon.version', {'protocol': 1}, i) for i in range(PIPELINED))
    with connect(sock_path) as s:
        last = b'"id":%d,' % (PIPELINED - 1)
        lines, eof, _ = exchange(s, data, lambda line: last in line, 'the pipelined requests')
    ids = []
    for line in lines:
        msg, why = well_formed(line)
        if why or 'result' not in msg:
            problems.append(f'pipelined: {why or line[:200]!r}')
            break
        ids.append(msg['id'])
    if ids != list(range(PIPELINED)):
        problems.append(f'pipelined: {len(ids)} answers, in order: {ids == sorted(ids)}')
    counts['pipelined'] = len(ids)

    # Clients that go away: mid-line, at once, and with 1,000 answers unread.
    for data in (b'{"jsonrpc":"2.0","id":1,"meth', b'',
                 request('daemon.status', {}, 1) * 1000):
        with connect(sock_path) as s:
            s.sendall(data)

    # A flood of connections: the one past the per-uid limit is refused.
    flood = []
    refused = None
    try:
        for _ in range(CONNECTION_LIMIT + 8):
            s = connect(sock_path)
            flood.append(s)
            # The refusal comes at once, before any request; a served connection
            # answers this one.
            lines, eof, _ = exchange(s, request('daemon.version', {}, 'flood'),
                                     lambda _: True, 'a flood connection')
            msg, why = well_formed(lines[0]) if lines else (None, 'closed without a line')
            if why:
                problems.append(f'connection flood: {why}')
                break
            if 'error' in msg:
                refused = (len(flood), msg, eof or exchange(s, b'', None, 'the close')[1])
                break
    finally:
        for s in flood:
            s.close()
    if refused is None:
        problems.append(f'connection flood: {len(flood)} connections of one uid were all served '
                        f'(the limit is {CONNECTION_LIMIT})')
    else:
        at, msg, closed = refused
        if msg['error']['code'] != -32004 or msg['id'] is not None or not closed or \
                at > CONNECTION_LIMIT + 1:
            problems.append(f'connection flood: connection {at} got {msg}, closed {closed}')
        counts['flood'] = at
    connections_gone(sock_path)


def connections_gone(sock_path):
    """Waits until the daemon has seen every earlier connection of ours close:
    it notices a close in its own time (a busy or sanitized daemon later), and
    until then the flood's connections still count against the per-uid limit,
    so the next connection would be refused (-32004). Returns once a new one
    is served and daemon.status counts it alone."""
    end = time.monotonic() + DEADLINE_S
    while True:
        with connect(sock_path) as probe:
            lines, _, _ = exchange(probe, request('daemon.status', {}, 'settle'),
                                   lambda _: True, 'daemon.status after the flood')
        msg = json.loads(lines[0]) if lines else {}
        if msg.get('result', {}).get('connections') == 1:
            return
        if time.monotonic() > end:
            raise Hang(f'the daemon keeps the flood\'s connections: {msg}')
        time.sleep(0.05)


# ---- 3. non-reading clients -------------------------------------------------------

def vm(pid, key):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise AssertionError(f'no {key} in /proc/{pid}/status')


def non_readers(sock_path, pid, problems, counts, rss_bounded):
    reader = connect(sock_path)
    try:
        # A connection that sends 2,000 workflow.get and never reads.
        silent = connect(sock_path)
        silent.sendall(b''.join(request('workflow.get', {'name': 'abuse'}, i)
                                for i in range(NON_READER_REQUESTS)))
        status = json.loads(exchange(reader, request('daemon.status', {}, 's'),
                                     lambda _: True, 'daemon.status beside a non-reader')[0][0])
        if 'result' not in status:
            problems.append(f'daemon.status beside a non-reader: {status}')
        if not EMULATED:
            counts['rss_non_reader'] = vm(pid, 'VmRSS')
        silent.close()

        # One that sends until the daemon cuts it off (> 8 MiB of answers waiting).
        silent = connect(sock_path)
        one = request('workflow.get', {'name': 'abuse'}, 0)
        sent, cut = 0, None
        try:
            while sent < CUT_OFF_MAX_REQUESTS:
                silent.sendall(one * 500)
                sent += 500
        except TimeoutError:
            raise Hang('the daemon stopped reading a non-reader without cutting it off')
        except OSError as e:  # EPIPE / ECONNRESET: cut off
            cut = e
        finally:
            silent.close()
        counts['cut_off_after'] = sent
        if cut is None:
            problems.append(f'a non-reader that sent {sent} workflow.get (answers of '
                            f'{sent * counts["get_bytes"] // 1048576} MiB) was not cut off '
                            f'(docs/rpc.md: past {PENDING_LIMIT >> 20} MiB waiting)')
        status = json.loads(exchange(reader, request('daemon.status', {}, 's'),
                                     lambda _: True, 'daemon.status after a non-reader')[0][0])
        if 'result' not in status:
            problems.append(f'daemon.status after a non-reader: {status}')
    finally:
        reader.close()
    if not EMULATED:
        counts['rss_peak'] = vm(pid, 'VmHWM')
        if rss_bounded and counts['rss_peak'] >= RSS_BOUND_MIB << 20:
            problems.append(f'peak RSS {counts["rss_peak"] / 1048576:.1f} MiB, bound '
                            f'{RSS_BOUND_MIB} MiB')


# ---- the daemon ---------------------------------------------------------------------

class Daemon:
    def __init__(self, picoflowd, root):
        self.sock = os.path.join(root, 'pf.sock')
        self.log_path = os.path.join(root, 'daemon.log')
        env = dict(os.environ, HOME=root, XDG_CONFIG_HOME=os.path.join(root, 'config'),
                   XDG_STATE_HOME=os.path.join(root, 'xstate'),
                   XDG_RUNTIME_DIR=os.path.join(root, 'xrun'))
        for d in ('config', 'xstate', 'xrun'):
            os.makedirs(os.path.join(root, d), mode=0o700)
        self.env = env
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen(
                command(picoflowd) + ['--config', '', '--socket', self.sock,
                                      '--state-dir', os.path.join(root, 'state')],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                preexec_fn=die_with_parent)
        end = time.monotonic() + DEADLINE_S
        while True:
            try:
                call(self.sock, 'daemon.version', {'protocol': 1})
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise AssertionError('picoflowd did not come up')
                time.sleep(0.05)

    def fds_alone(self):
        """Its open fds while one probe connection is its only one."""
        end = time.monotonic() + DEADLINE_S
        with connect(self.sock) as probe:
            while True:
                lines, _, _ = exchange(probe, request('daemon.status', {}, 'probe'),
                                       lambda _: True, 'daemon.status')
                if json.loads(lines[0])['result']['connections'] == 1:
                    return len(os.listdir(f'/proc/{self.proc.pid}/fd'))
                if time.monotonic() > end:
                    raise Hang('the daemon keeps connections open')
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_workflow(sock_path):
    with connect(sock_path) as s:
        lines, _, _ = exchange(s, request('run.start', {'workflow': 'abuse'}, 1),
                               lambda _: True, 'run.start')
        run_id = json.loads(lines[0])['result']['run_id']
        lines, _, _ = exchange(s, request('run.wait', {'run_id': run_id}, 2),
                               lambda _: True, 'run.wait')
    return json.loads(lines[0])['result']['status']


def check(root, picoflowd, picoflowctl):
    with open(DOC) as f:
        methods = documented_methods(f.read())
    # Under ASan the RSS says nothing of what the code keeps (tests/sanitizers.py).
    asan = address_sanitized(picoflowd)
    d = Daemon(picoflowd, root)
    problems = []
    counts = {'lines': 0, 'notifications': 0, 'answers': 0}
    started = time.monotonic()
    try:
        wf = os.path.join(root, 'abuse.yaml')
        with open(wf, 'w') as f:
            f.write(WORKFLOW)
        r = subprocess.run(command(picoflowctl) + ['--socket', d.sock, 'submit', wf],
                           capture_output=True, text=True, env=d.env, timeout=DEADLINE_S)
        assert r.returncode == 0, r
        assert run_workflow(d.sock) == 'succeeded'
        counts['get_bytes'] = len(json.dumps(call(d.sock, 'workflow.get', {'name': 'abuse'})))
        fds_before = None if EMULATED else d.fds_alone()

        cases = method_cases(methods)
        run_cases(d.sock, cases, problems, counts)
        t_methods = time.monotonic() - started
        framing_checks(d.sock, problems, counts)
        non_readers(d.sock, d.proc.pid, problems, counts, rss_bounded=not asan)

        assert d.proc.poll() is None, f'picoflowd exited ({d.proc.returncode})'
        status = call(d.sock, 'daemon.status')
        r = subprocess.run(command(picoflowctl) + ['--socket', d.sock, 'daemon', 'status'],
                           capture_output=True, text=True, env=d.env, timeout=DEADLINE_S)
        if r.returncode != 0:
            problems.append(f'picoflowctl daemon status after the abuse: {r}')
        final = run_workflow(d.sock)
        if final != 'succeeded':
            problems.append(f'a run after the abuse ended {final}')
        fds_after = None
        if not EMULATED:
            # Connections end asynchronously: wait (a deadline only ends a hang)
            # until the count is back within 2, then take it.
            end = time.monotonic() + DEADLINE_S
            while True:
                fds_after = d.fds_alone()
                if abs(fds_after - fds_before) <= 2 or time.monotonic() > end:
                    break
                time.sleep(0.2)
            if abs(fds_after - fds_before) > 2:
                problems.append(f'open fds {fds_after} after the abuse, {fds_before} before')
        codes = ', '.join(f'{c}: {counts[c]}'
                          for c in sorted(k for k in counts if isinstance(k, int)))
        print(f'{len(methods)} methods, {len(cases)} malformed cases ({counts["lines"]} '
              f'lines with their sentinels, {counts["notifications"]} of them notifications; '
              f'{counts["answers"]} answers; errors {codes}) in '
              f'{t_methods:.1f} s; {counts["framing"]} framing answers, {counts["pipelined"]} '
              f'pipelined answers, connection {counts.get("flood")} refused; non-reader: '
              f'{NON_READER_REQUESTS} unread, another cut off after '
              f'{counts["cut_off_after"]} requests; RSS '
              + ('(emulated: not measured)' if EMULATED else
                 f'{counts["rss_non_reader"] / 1048576:.1f} MiB beside the non-reader, peak '
                 f'{counts["rss_peak"] / 1048576:.1f} MiB ('
                 + ('AddressSanitizer: bound not checked' if asan else
                    f'bound {RSS_BOUND_MIB} MiB')
                 + f'); fds {fds_before} before, {fds_after} after')
              + f'; daemon up {status["uptime_ms"] / 1000:.1f} s, final run {final}')
    finally:
        d.stop()
    for p in problems:
        print(f'FAIL: {p}', file=sys.stderr)
    return 1 if problems else 0


def main(picoflowd, picoflowctl):
    root = tempfile.mkdtemp(prefix='pfabuse-')
    rc = 1
    try:
        rc = check(root, picoflowd, picoflowctl)
        return rc
    finally:
        try:
            if rc != 0:
                log = os.path.join(root, 'daemon.log')
                if os.path.exists(log):
                    sys.stderr.write('--- daemon log (last lines) ---\n')
                    sys.stderr.writelines(open(log, errors='replace').readlines()[-60:])
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    # meson ends a test that overruns with SIGTERM: clean up all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main(sys.argv[1], sys.argv[2]))
