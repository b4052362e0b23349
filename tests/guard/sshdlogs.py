"""Large, realistic syslog auth.log files of internet-facing OpenSSH servers, deterministic from a seed.

`write_sshd_log(path, lines, seed)` streams `lines` lines (memory stays small: only the open
connections are held) in the shapes OpenSSH 7.x-9.x write through syslog, each prefixed
`Mon DD HH:MM:SS host sshd[PID]: `, with non-decreasing timestamps:

* a central log of four servers with different configurations: `web1` (OpenSSH 9, Debian 12),
  `bastion` (OpenSSH 8, `LogLevel VERBOSE`, `AllowUsers`), `legacy` (OpenSSH 7.4, CentOS 7 style:
  `UseDNS yes`, keyboard-interactive through PAM, `pid_max` 32768 so pids are reused) and `nas`
  (OpenSSH 7, `UsePAM no`, root locked);
* connections are multi-line and interleaved: every connection's lines share its pid and are spread
  over seconds to minutes (hours for sessions), with thousands of connections open at once in attack
  waves;
* attackers run campaigns from one address (brute force with hydra-like parallel connections, slow
  sprayers, botnets of one-shot addresses, port scanners, banner grabbers, old clients that cannot
  negotiate), legitimate users log in by key or password (with typos), open sessions, use sudo;
  monitoring probes the port; CRON, systemd-logind, sudo and su write their lines too.

Most lines are failed attempts and pre-authentication noise; a minority are successful sessions.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Names bots try, most common first (root dominates real logs); some are odd on purpose: empty,
# with spaces, with " from ", an address, octal escapes as sshd writes non-ASCII bytes.
_BOT_USERS = (
    "admin",
    "test",
    "user",
    "ubuntu",
    "oracle",
    "postgres",
    "git",
    "pi",
    "ftpuser",
    "guest",
    "support",
    "deploy",
    "mysql",
    "hadoop",
    "jenkins",
    "dev",
    "ubnt",
    "usuario",
    "test1",
    "123",
    "admin1",
    "nagios",
    "centos",
    "ec2-user",
    "steam",
    "minecraft",
    "es",
    "elastic",
    "sol",
    "solana",
    "validator",
    "node",
    "ansible",
    "vagrant",
    "debian",
    "odoo",
    "teamspeak",
    "ts3",
    "www",
    "web",
    "server",
    "tomcat",
    "zabbix",
    "administrator",
    "Admin",
    "ROOT",
    "daemon",
    "bin",
    "nobody",
    "operator",
    "sysadmin",
    "backup",
    "uucp",
    "student",
    "demo",
    "www-data",
    "redis",
    "kafka",
    "docker",
    "gitlab-runner",
    "sftp",
    "ftp",
    "mail",
    "",
    "admin test",
    "a from 10.9.8.7",
    "1.2.3.4",
    "\\303\\251t\\303\\251",
    "user@example.com",
    "$(id)",
    "from",
    "invalid user x",
    "-",
    "oracle11g",
    "bitcoin",
    "trader",
    "ethereum",
    "esroot",
    "hduser",
)
_BANNERS = (
    "GET / HTTP/1.1",
    "\\026\\003\\001",
    "SSH-2.0-Go",
    "MGLNDD_203.0.113.10_22",
    "HELP",
    "\\200\\001\\003",
    "SSH-1.5-Nmap-SSH1-Hostkey",
    "OPTIONS / RTSP/1.0",
    "",
    "\\r\\n",
)
_BYE = ("Normal Shutdown, Thank you for playing", "Client disconnecting normally", "disconnected by user")
_KEX_OFFERS = (
    ("key exchange method", "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1"),
    (
        "key exchange method",
        "diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1",
    ),
    ("host key type", "ssh-rsa,ssh-dss"),
    ("host key type", "ssh-dss"),
    ("cipher", "aes128-cbc,3des-cbc,aes192-cbc,aes256-cbc"),
    ("MAC", "hmac-sha1,hmac-sha1-96,hmac-md5"),
)
_KEY_TYPES = ("RSA", "ED25519", "ECDSA")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PTR_FORMATS = (
    "static.{d}.{c}.{b}.{a}.clients.your-server.de",
    "ec2-{a}-{b}-{c}-{d}.compute-1.amazonaws.com",
    "{a}-{b}-{c}-{d}.rev.example-isp.net",
    "host{d}.{c}.{b}.{a}.in-addr.example.org",
    "vps-{c}{d}.hosting.example.com",
)


@dataclass(frozen=True)
class Server:
    """One sshd whose lines go to the central auth.log."""

    name: str
    version: int  # OpenSSH major version: 7, 8 or 9 (changes the wording of several messages)
    addr: str
    weight: float  # share of the attack traffic
    verbose: bool = False  # LogLevel VERBOSE: "Connection from ..." and "Failed publickey ..."
    use_dns: bool = False  # UseDNS yes: PAM's rhost and "PAM: ..." errors name the client's host
    use_pam: bool = True
    kbdint: bool = False  # keyboard-interactive (PAM) enabled
    allow_users: tuple[str, ...] | None = None
    pid_max: int = 4194304
    valid: tuple[str, ...] = ("root",)  # accounts that exist besides the legitimate users


SERVERS = (
    Server("web1", 9, "203.0.113.10", 0.62, valid=("root", "postgres", "www-data", "daemon", "bin", "nobody")),
    Server(
        "bastion",
        8,
        "10.0.0.1",
        0.2,
        verbose=True,
        allow_users=("alice", "bob", "deploy", "carol"),
        valid=("root", "ubuntu", "daemon", "nobody", "git"),
    ),
    Server(
        "legacy",
        7,
        "198.51.100.7",
        0.15,
        use_dns=True,
        kbdint=True,
        pid_max=32768,
        valid=("root", "oracle", "postgres", "nobody", "ftp"),
    ),
    Server("nas", 7, "192.168.1.5", 0.03, use_pam=False, pid_max=32768, valid=("root", "admin", "nobody")),
)
_LOCKED = {"nas": ("root", "nobody"), "legacy": ("nobody",)}


@dataclass
class _Host:
    server: Server
    last_pid: int
    master: int
    logind: int
    session: int = 0
    live: set[int] = field(default_factory=set)


@dataclass
class _User:
    name: str
    uid: int
    addrs: tuple[str, ...]
    servers: tuple[str, ...]
    password: bool  # logs in with a password (sometimes mistyped), else by key
    sudo: bool


class _Log:
    """The writer: a heap of future lines and campaign ticks, popped in time order."""

    def __init__(self, handle, limit: int, rng: random.Random, start: datetime) -> None:
        self.out = handle
        self.limit = limit
        self.written = 0
        self.rng = rng
        self.start = start
        self.heap: list[tuple[float, int, Callable[[float], None]]] = []
        self.seq = 0
        self._stamp_at = -1
        self._stamp = ""
        self._buf: list[str] = []

    def at(self, when: float, action: Callable[[float], None]) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, action))

    def line(self, when: float, host: str, prog: str, msg: str) -> None:
        second = int(when)
        if second != self._stamp_at:
            t = self.start + timedelta(seconds=second)
            self._stamp = f"{_MONTHS[t.month - 1]} {t.day:2d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            self._stamp_at = second
        self._buf.append(f"{self._stamp} {host} {prog}: {msg}\n")
        self.written += 1
        if len(self._buf) >= 4096:
            self.flush()

    def flush(self) -> None:
        self.out.write("".join(self._buf))
        self._buf.clear()


class _Generator:
    def __init__(self, log: _Log, rng: random.Random) -> None:
        self.log = log
        self.rng = rng
        r = rng
        self.hosts = {
            s.name: _Host(
                s, last_pid=r.randint(1000, s.pid_max // 2), master=r.randint(400, 900), logind=r.randint(300, 600)
            )
            for s in SERVERS
        }
        self.ptr: dict[str, str | None] = {}
        self.heavy = [self._bot_addr() for _ in range(400)]
        self.users = self._users()
        self.rate = 20.0  # new attack campaigns per second, changed by waves
        self.ci_addr = self._public_v4()
        self.monitor = "198.51.100.200"

    # --- addresses ---------------------------------------------------------------------------------

    def _public_v4(self) -> str:
        r = self.rng
        while True:
            a = r.randint(1, 223)
            b = r.randint(0, 255)
            if a in (10, 127, 0) or (a == 172 and 16 <= b < 32) or (a == 192 and b == 168):
                continue
            if (a == 169 and b == 254) or (a == 100 and 64 <= b < 128) or (a == 198 and b in (18, 19)):
                continue
            return f"{a}.{b}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def _public_v6(self) -> str:
        r = self.rng
        prefix = r.choice((0x2001, 0x2A01, 0x2A02, 0x2600, 0x2604, 0x2406, 0x2800, 0x2C0F))
        words = [prefix, r.randint(0, 0xFFFF), r.randint(0, 0xFFFF), r.randint(0, 0xFFFF)]
        if r.random() < 0.6:
            words += [0, 0, 0, r.randint(1, 0xFFFF)]
        else:
            words += [r.randint(0, 0xFFFF) for _ in range(4)]
        return str(ipaddress.IPv6Address(":".join(f"{w:x}" for w in words)))

    def _bot_addr(self) -> str:
        return self._public_v6() if self.rng.random() < 0.04 else self._public_v4()

    def _remote_name(self, server: Server, addr: str) -> str:
        """What UseDNS yes puts where sshd names the client: a forward-confirmed PTR name, else the address."""
        if not server.use_dns:
            return addr
        if addr not in self.ptr:
            name = None
            if ":" not in addr and self.rng.random() < 0.3:
                a, b, c, d = addr.split(".")
                name = self.rng.choice(_PTR_FORMATS).format(a=a, b=b, c=c, d=d)
            self.ptr[addr] = name
            if len(self.ptr) > 50000:
                self.ptr.clear()
        return self.ptr[addr] or addr

    def _users(self) -> list[_User]:
        r = self.rng
        names = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "deploy", "backup", "git", "mallory")
        users = []
        for k, name in enumerate(names):
            addrs = tuple(
                (self._public_v6() if r.random() < 0.25 else self._public_v4()) for _ in range(r.randint(1, 3))
            )
            servers = ("bastion",) if name in ("alice", "bob", "carol", "deploy") and r.random() < 0.5 else ()
            servers += tuple(s for s in ("web1", "legacy", "nas") if r.random() < 0.6) or ("web1",)
            users.append(_User(name, 1000 + k, addrs, servers, password=r.random() < 0.35, sudo=r.random() < 0.5))
        return users

    # --- pids ------------------------------------------------------------------------------------

    def _pid(self, host: _Host) -> int:
        pid = host.last_pid
        while True:
            pid += self.rng.randint(1, 4)
            if pid >= host.server.pid_max:
                pid = 300 + self.rng.randint(0, 50)
            if pid not in host.live:
                break
        host.last_pid = pid
        return pid

    def _script(
        self, host: _Host, pid: int, prog: str, start: float, steps: list[tuple[float, str]], keep: bool
    ) -> None:
        """Schedule a process' lines: `steps` are (delay after the previous line, message)."""
        log = self.log
        name = host.server.name
        label = f"{prog}[{pid}]" if pid else prog
        if keep:
            host.live.add(pid)
        when = start
        timed = []
        for delay, msg in steps:
            when += delay
            timed.append((when, msg))
        timed.reverse()

        def emit(now: float) -> None:
            log.line(now, name, label, timed.pop()[1])
            if timed:
                log.at(timed[-1][0], emit)
            elif keep:
                host.live.discard(pid)

        if timed:
            log.at(timed[-1][0], emit)
        elif keep:
            host.live.discard(pid)

    # --- message shapes per version ---------------------------------------------------------------

    @staticmethod
    def _who(server: Server, user: str | None, invalid: bool, addr: str, port: int) -> str:
        """The client as 8.x+ name it in closing messages: `[invalid|authenticating] user U ADDR port P`."""
        if server.version >= 8 and user is not None:
            return f"{'invalid' if invalid else 'authenticating'} user {user} {addr} port {port}"
        return f"{addr} port {port}"

    def _close_preauth(
        self, server: Server, user: str | None, invalid: bool, addr: str, port: int
    ) -> list[tuple[float, str]]:
        r = self.rng
        who = self._who(server, user, invalid, addr, port)
        x = r.random()
        if x < 0.45:
            return [
                (r.uniform(0.05, 2), f"Received disconnect from {addr} port {port}:11: Bye Bye [preauth]"),
                (0.0, f"Disconnected from {who} [preauth]"),
            ]
        if x < 0.85:
            return [(r.uniform(0.05, 5), f"Connection closed by {who} [preauth]")]
        if x < 0.97:
            return [(r.uniform(0.05, 5), f"Connection reset by {who} [preauth]")]
        return [
            (
                r.uniform(0.05, 1),
                f"Received disconnect from {addr} port {port}:11: {r.choice(_BYE)} [preauth]",
            ),
            (0.0, f"Disconnected from {who} [preauth]"),
        ]

    def _pam_fail(self, server: Server, user: str, invalid: bool, addr: str) -> list[tuple[float, str]]:
        if not server.use_pam:
            return []
        rhost = self._remote_name(server, addr)
        if invalid:
            return [
                (0.0, "pam_unix(sshd:auth): check pass; user unknown"),
                (
                    0.0,
                    f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={rhost}",
                ),
            ]
        return [
            (
                0.0,
                "pam_unix(sshd:auth): authentication failure; logname= "
                f"uid=0 euid=0 tty=ssh ruser= rhost={rhost}  user={user}",
            )
        ]

    def _pam_more(self, server: Server, user: str, invalid: bool, addr: str, failures: int) -> list[tuple[float, str]]:
        if not server.use_pam or failures < 2:
            return []
        n = failures - 1
        rhost = self._remote_name(server, addr)
        tail = "" if invalid else f"  user={user}"
        s = "s" if n > 1 else ""
        return [
            (0.0, f"PAM {n} more authentication failure{s}; logname= uid=0 euid=0 tty=ssh ruser= rhost={rhost}{tail}")
        ]

    def _fingerprint(self) -> str:
        r = self.rng
        return f"{r.choice(_KEY_TYPES)} SHA256:{''.join(r.choice(_B64) for _ in range(43))}"

    # --- bot connections --------------------------------------------------------------------------

    def _identity(self, server: Server, user: str, addr: str) -> tuple[bool, list[str]]:
        """Whether sshd treats `user` as invalid, and the lines it logs when the name is looked up."""
        known = user in server.valid or any(u.name == user and server.name in u.servers for u in self.users)
        if not known:
            return True, []
        if server.allow_users is not None and user not in server.allow_users:
            return True, [
                f"User {user} from {self._remote_name(server, addr)} not allowed because not listed in AllowUsers"
            ]
        if user in _LOCKED.get(server.name, ()):
            return True, [f"User {user} not allowed because account is locked"]
        return False, []

    def _bot_connection(self, now: float, server: Server, addr: str, kind: str, users: list[str], tries: int) -> None:
        r = self.rng
        host = self.hosts[server.name]
        pid = self._pid(host)
        port = r.randint(1024, 65535)
        v = server.version
        steps: list[tuple[float, str]] = []
        if server.verbose:
            on = f" on {server.addr} port 22" + (' rdomain ""' if v >= 8 and r.random() < 0.3 else "")
            steps.append((0.0, f"Connection from {addr} port {port}{on}"))
        if kind == "noid":
            gone_early = not server.verbose and r.random() < 0.04  # the socket was gone before sshd asked for the peer
            shown, shown_port = ("UNKNOWN", 65535) if gone_early else (addr, port)
            if v == 7:
                steps.append(
                    (r.uniform(0.5, 15), f"Did not receive identification string from {shown} port {shown_port}")
                )
            elif r.random() < 0.7:
                steps += [
                    (r.uniform(0.1, 10), "error: kex_exchange_identification: Connection closed by remote host"),
                    (0.0, f"Connection closed by {shown} port {shown_port}"),
                ]
            else:
                steps += [
                    (r.uniform(0.1, 10), "error: kex_exchange_identification: read: Connection reset by peer"),
                    (0.0, f"Connection reset by {shown} port {shown_port}"),
                ]
        elif kind == "banner":
            banner = r.choice(_BANNERS)
            if v == 7:
                steps.append(
                    (r.uniform(0.1, 3), f"Bad protocol version identification '{banner}' from {addr} port {port}")
                )
            else:
                why = (
                    f'client sent invalid protocol identifier "{banner}"'
                    if r.random() < 0.8
                    else "banner line too long"
                )
                steps += [
                    (r.uniform(0.1, 3), f"error: kex_exchange_identification: {why}"),
                    (0.0, f"banner exchange: Connection from {addr} port {port}: invalid format"),
                ]
        elif kind == "negotiate":
            what, offer = r.choice(_KEX_OFFERS)
            pre = "fatal: " if v == 7 else ""
            steps.append(
                (
                    r.uniform(0.1, 2),
                    f"{pre}Unable to negotiate with {addr} port {port}: no matching {what} found. "
                    f"Their offer: {offer} [preauth]",
                )
            )
        elif kind == "quick":
            steps += self._close_preauth(server, None, False, addr, port)
        elif kind == "noauth":
            pre = "error: " if r.random() < 0.5 else ""
            steps += [
                (
                    r.uniform(0.2, 3),
                    f"{pre}Received disconnect from {addr} port {port}:14: "
                    f"No{' supported' if r.random() < 0.5 else ''} authentication methods available [preauth]",
                ),
                (0.0, f"Disconnected from {addr} port {port} [preauth]"),
            ]
        elif kind == "timeout":
            steps.append((120.0 + r.random(), f"fatal: Timeout before authentication for {addr} port {port}"))
        elif kind == "pubkey":
            user = users[0]
            invalid, pre = self._identity(server, user, addr)
            steps += [(r.uniform(0.2, 1), m) for m in pre]
            if invalid:
                steps.append((r.uniform(0.2, 1), f"Invalid user {user} from {addr} port {port}"))
            if server.verbose:
                for _ in range(r.randint(1, 3)):
                    inv = "invalid user " if invalid else ""
                    steps.append(
                        (
                            r.uniform(0.1, 1),
                            f"Failed publickey for {inv}{user} from {addr} port {port} ssh2: {self._fingerprint()}",
                        )
                    )
            steps += self._close_preauth(server, user, invalid, addr, port)
        elif kind == "refused":
            steps.append((r.uniform(0.3, 2), f"ROOT LOGIN REFUSED FROM {addr} port {port}"))
            steps += self._close_preauth(server, "root", False, addr, port)
        else:  # password guessing: "brute", "jsch", "kbdint"
            steps += self._guesses(server, addr, port, kind, users, tries)
        self._script(host, pid, "sshd", now, steps, keep=True)

    def _guesses(
        self, server: Server, addr: str, port: int, kind: str, users: list[str], tries: int
    ) -> list[tuple[float, str]]:
        r = self.rng
        v = server.version
        user = users[0]
        invalid, pre = self._identity(server, user, addr)
        steps = [(r.uniform(0.3, 2), m) for m in pre]
        if invalid:
            steps.append((r.uniform(0.1, 1.5) if not pre else 0.0, f"Invalid user {user} from {addr} port {port}"))
            if v == 7:
                steps.append((r.uniform(0.05, 0.5), f"input_userauth_request: invalid user {user} [preauth]"))
        inv = "invalid user " if invalid else ""
        kbd = kind == "kbdint" and server.kbdint
        if kbd and invalid and r.random() < 0.5:
            steps.append((0.05, f"Failed none for invalid user {user} from {addr} port {port} ssh2"))
        gap = r.choice((0.0, 0.5, 2.0, 8.0))  # the client's own pause between guesses
        for k in range(tries):
            if kbd:
                steps.append(
                    (
                        r.uniform(0.1, 1) + gap * (k > 0),
                        f"Postponed keyboard-interactive for {inv}{user} from {addr} port {port} ssh2 [preauth]",
                    )
                )
                steps += self._pam_fail(server, user, invalid, addr)
                if server.use_pam:
                    illegal = "illegal user " if invalid else ""
                    steps.append(
                        (
                            r.uniform(1.5, 3),
                            f"error: PAM: Authentication failure for {illegal}{user} "
                            f"from {self._remote_name(server, addr)}",
                        )
                    )
                steps.append((0.0, f"Failed keyboard-interactive/pam for {inv}{user} from {addr} port {port} ssh2"))
            else:
                steps += [
                    (d if i else r.uniform(0.2, 1.5) + gap * (k > 0), m)
                    for i, (d, m) in enumerate(self._pam_fail(server, user, invalid, addr))
                ]
                steps.append((r.uniform(1.8, 3.2), f"Failed password for {inv}{user} from {addr} port {port} ssh2"))
                if server.name == "legacy" and k and r.random() < 0.05:
                    steps.append(
                        (
                            0.0,
                            f"message repeated {r.randint(2, 4)} times: [ Failed "
                            f"password for {inv}{user} from {addr} port {port} ssh2]",
                        )
                    )
        if kind == "jsch":
            pre_e = "error: " if v >= 8 or r.random() < 0.5 else ""
            steps += [
                (
                    r.uniform(0.05, 0.5),
                    f"{pre_e}Received disconnect from {addr} port {port}:3: "
                    "com.jcraft.jsch.JSchException: Auth fail [preauth]",
                ),
                (0.0, f"Disconnected from {self._who(server, user, invalid, addr, port)} [preauth]"),
            ]
            steps += self._pam_more(server, user, invalid, addr, tries)
        elif tries >= 6:
            steps.append(
                (
                    r.uniform(0.1, 1),
                    "error: maximum authentication attempts exceeded for "
                    f"{inv}{user} from {addr} port {port} ssh2 [preauth]",
                )
            )
            if v == 7:
                steps.append((0.0, "Disconnecting: Too many authentication failures [preauth]"))
            else:
                steps.append(
                    (
                        0.0,
                        f"Disconnecting {self._who(server, user, invalid, addr, port)}: "
                        "Too many authentication failures [preauth]",
                    )
                )
            steps += self._pam_more(server, user, invalid, addr, tries)
        else:
            steps += self._close_preauth(server, user, invalid, addr, port)
            steps += self._pam_more(server, user, invalid, addr, tries)
        return steps

    # --- campaigns ----------------------------------------------------------------------------------

    def _server(self) -> Server:
        x = self.rng.random()
        for s in SERVERS:
            x -= s.weight
            if x < 0:
                return s
        return SERVERS[0]

    def _wordlist(self) -> list[str]:
        r = self.rng
        x = r.random()
        if x < 0.45:
            return ["root"]
        n = r.randint(3, 40)
        names = [
            r.choice(_BOT_USERS) if r.random() < 0.9 else f"{r.choice(_BOT_USERS)}{r.randint(1, 99)}" for _ in range(n)
        ]
        if x < 0.7:
            names[::3] = ["root"] * len(names[::3])
        return names

    def _campaign(self, now: float) -> None:
        """A new attacking address (or a heavy hitter coming back) and what it does."""
        r = self.rng
        x = r.random()
        server = self._server()
        if x < 0.28:  # scanners and broken clients: one or two connections
            addr = self._bot_addr()
            kind = r.choices(("noid", "banner", "negotiate", "quick", "noauth", "timeout"), (40, 10, 18, 22, 4, 6))[0]
            for k in range(1 if r.random() < 0.8 else 2):
                self._bot_connection(now + k * r.uniform(0.5, 30), server, addr, kind, ["root"], 0)
            return
        if x < 0.62:  # botnet sprayer: a fresh address, a few guesses, gone
            addr = self._bot_addr()
            conns, parallel, users = r.randint(1, 3), 1, self._wordlist()
        else:  # brute forcer: many connections, some in parallel; heavy hitters return
            addr = r.choice(self.heavy) if r.random() < 0.5 else self._bot_addr()
            conns = min(int(r.paretovariate(1.1)) * r.randint(2, 6), 600)
            parallel, users = r.choice((1, 1, 2, 4)), self._wordlist()
        kind = r.choices(("brute", "jsch", "kbdint", "pubkey", "refused", "quick"), (80, 3, 6, 5, 0.5, 5))[0]
        if kind == "kbdint" and not server.kbdint:
            kind = "brute"
        if kind == "refused" and server.name != "nas":
            kind = "brute"
        state = {"left": conns, "user": 0}

        def tick(t: float) -> None:
            if state["left"] <= 0:
                return
            state["left"] -= 1
            k = state["user"]
            state["user"] = k + 1
            user = users[k % len(users)]
            tries = min(6, 1 + int(r.expovariate(0.6))) if kind != "jsch" else r.randint(1, 2)
            this = "brute" if kind in ("pubkey", "quick") and r.random() < 0.3 else kind
            self._bot_connection(t, server, addr, this, [user], tries)
            self.log.at(t + r.uniform(0.2, 40) / parallel + (tries * 3 / parallel), tick)

        for p in range(parallel):
            self.log.at(now + p * r.uniform(0, 1), tick)

    def _arrivals(self, now: float) -> None:
        r = self.rng
        if r.random() < 0.002:  # a new wave: quiet, normal, busy or flooded
            self.rate = r.choice((2.0, 8.0, 20.0, 40.0, 80.0))
        server = SERVERS[0] if r.random() < 0.5 else self._server()
        if server.version >= 8 and self.rate >= 40 and r.random() < 0.03:
            host = self.hosts[server.name]
            n = r.randint(100, 9999)
            self.log.line(
                now,
                server.name,
                f"sshd[{host.master}]",
                f"drop connection #{n} from [{self._bot_addr()}]:{r.randint(1024, 65535)} "
                f"on [{server.addr}]:22 past MaxStartups",
            )
        else:
            self._campaign(now)
        self.log.at(now + r.expovariate(self.rate), self._arrivals)

    # --- legitimate use -----------------------------------------------------------------------------

    def _login(self, now: float) -> None:
        r = self.rng
        user = r.choice(self.users)
        name = r.choice(user.servers)
        server = next(s for s in SERVERS if s.name == name)
        if server.allow_users is not None and user.name not in server.allow_users:
            server = SERVERS[0]
        self._session(now, server, user, r.choice(user.addrs))
        self.log.at(now + r.expovariate(1 / 40), self._login)

    def _session(self, now: float, server: Server, user: _User, addr: str, short: bool = False) -> None:
        r = self.rng
        host = self.hosts[server.name]
        pid = self._pid(host)
        port = r.randint(1024, 65535)
        v = server.version
        steps: list[tuple[float, str]] = []
        if server.verbose:
            steps.append((0.0, f"Connection from {addr} port {port} on {server.addr} port 22"))
        if user.password:
            for _ in range(r.choice((0, 0, 0, 1, 1, 2))):  # typos
                steps += [
                    (r.uniform(2, 6) if i == 0 else d, m)
                    for i, (d, m) in enumerate(self._pam_fail(server, user.name, False, addr))
                ]
                steps.append((r.uniform(1.8, 3), f"Failed password for {user.name} from {addr} port {port} ssh2"))
            method = "keyboard-interactive/pam" if server.kbdint and r.random() < 0.5 else "password"
            if method != "password":
                steps.append(
                    (
                        r.uniform(0.5, 2),
                        f"Postponed keyboard-interactive/pam for {user.name} from {addr} port {port} ssh2 [preauth]",
                    )
                )
            steps.append((r.uniform(1, 5), f"Accepted {method} for {user.name} from {addr} port {port} ssh2"))
        else:
            if server.verbose and r.random() < 0.3:
                steps.append(
                    (
                        r.uniform(0.1, 0.5),
                        f"Failed publickey for {user.name} from {addr} port {port} ssh2: {self._fingerprint()}",
                    )
                )
            steps.append(
                (
                    r.uniform(0.1, 0.8),
                    f"Accepted publickey for {user.name} from {addr} port {port} ssh2: {self._fingerprint()}",
                )
            )
        opened = f"{user.name}(uid={user.uid})" if v >= 9 else user.name
        steps.append((0.01, f"pam_unix(sshd:session): session opened for user {opened} by (uid=0)"))
        start = now
        host.session += 1
        session = host.session
        total = sum(d for d, _ in steps)
        self._script(host, pid, "sshd", start, steps, keep=True)
        logind = [(total + 0.02, f"New session {session} of user {user.name}.")]
        length = r.uniform(5, 60) if short else r.expovariate(1 / 1800)
        child = self._pid(host)
        end = [
            (length, f"Received disconnect from {addr} port {port}:11: disconnected by user"),
            (
                0.0,
                f"Disconnected from user {user.name} {addr} port {port}"
                if v >= 8
                else f"Disconnected from {addr} port {port}",
            ),
        ]
        self._script(host, child, "sshd", start + total, end, keep=True)
        self._script(
            host,
            0,
            f"sshd[{pid}]",
            start + total + length + 0.01,
            [(0.0, f"pam_unix(sshd:session): session closed for user {user.name}")],
            keep=False,
        )
        logind += [
            (length + 0.02, f"Session {session} logged out. Waiting for processes to exit."),
            (0.01, f"Removed session {session}."),
        ]
        self._script(host, host.logind, "systemd-logind", start, logind, keep=False)
        if user.sudo and not short:
            t = start + total + r.uniform(10, max(11, length - 5))
            if t < start + total + length:
                self._sudo(t, host, user)

    def _sudo(self, now: float, host: _Host, user: _User) -> None:
        r = self.rng
        cmd = r.choice(
            ("/usr/bin/apt update", "/usr/bin/systemctl restart nginx", "/usr/bin/journalctl -u sshd", "/bin/bash")
        )
        by = (
            f"root(uid=0) by {user.name}(uid={user.uid})"
            if host.server.version >= 9
            else f"root by {user.name}(uid={user.uid})"
        )
        steps = []
        if r.random() < 0.1:
            steps.append(
                (
                    0.0,
                    f"pam_unix(sudo:auth): authentication failure; logname={user.name} uid={user.uid} "
                    f"euid=0 tty=/dev/pts/0 ruser={user.name} rhost=  user={user.name}",
                )
            )
        steps += [
            (r.uniform(0, 3), f"   {user.name} : TTY=pts/0 ; PWD=/home/{user.name} ; USER=root ; COMMAND={cmd}"),
            (0.0, f"pam_unix(sudo:session): session opened for user {by}"),
            (r.uniform(0.1, 30), "pam_unix(sudo:session): session closed for user root"),
        ]
        self._script(host, 0, "sudo", now, steps, keep=False)

    def _deploy(self, now: float) -> None:
        """CI pushing to `web1` by key every few minutes, and the monitoring probe of every server."""
        r = self.rng
        deploy = next(u for u in self.users if u.name == "deploy")
        ci = _User("deploy", deploy.uid, (self.ci_addr,), ("web1",), password=False, sudo=False)
        self._session(now, SERVERS[0], ci, self.ci_addr, short=True)
        self.log.at(now + r.uniform(60, 400), self._deploy)

    def _monitor(self, now: float) -> None:
        r = self.rng
        for server in SERVERS[:3]:
            host = self.hosts[server.name]
            pid = self._pid(host)
            port = r.randint(30000, 60999)
            steps = (
                [(0.0, f"Connection from {self.monitor} port {port} on {server.addr} port 22")]
                if server.verbose
                else []
            )
            steps.append(
                (
                    r.uniform(0.01, 0.2),
                    f"Connection closed by {self.monitor} port {port}" + (" [preauth]" if server.version == 7 else ""),
                )
            )
            self._script(host, pid, "sshd", now + r.uniform(0, 2), steps, keep=True)
        self.log.at(now + 60, self._monitor)

    def _cron(self, now: float) -> None:
        r = self.rng
        for host in self.hosts.values():
            if r.random() < 0.7:
                pid = self._pid(host)
                who = "root(uid=0)" if host.server.version >= 9 else "root"
                self._script(
                    host,
                    pid,
                    "CRON",
                    now + r.uniform(0, 1),
                    [
                        (0.0, f"pam_unix(cron:session): session opened for user {who} by (uid=0)"),
                        (r.uniform(0.01, 2), "pam_unix(cron:session): session closed for user root"),
                    ],
                    keep=True,
                )
            if r.random() < 0.01:
                pid = self._pid(host)
                self._script(
                    host,
                    pid,
                    "su",
                    now + r.uniform(0, 30),
                    [
                        (0.0, "(to postgres) root on none"),
                        (0.0, "pam_unix(su-l:session): session opened for user postgres(uid=115) by (uid=0)"),
                        (r.uniform(1, 20), "pam_unix(su-l:session): session closed for user postgres"),
                    ],
                    keep=True,
                )
        self.log.at(now + 60, self._cron)

    def run(self) -> None:
        log = self.log
        r = self.rng
        log.at(r.uniform(0, 1), self._arrivals)
        log.at(r.uniform(0, 5), self._login)
        log.at(r.uniform(0, 60), self._deploy)
        log.at(r.uniform(0, 60), self._monitor)
        log.at(60 - log.start.second, self._cron)
        for server in SERVERS[:2]:  # an sshd restarted at the start of the log
            master = self.hosts[server.name].master
            log.line(0.0, server.name, f"sshd[{master}]", "Server listening on 0.0.0.0 port 22.")
            log.line(0.0, server.name, f"sshd[{master}]", "Server listening on :: port 22.")
        while log.heap and log.written < log.limit:
            when, _, action = heapq.heappop(log.heap)
            action(when)
        log.flush()


def write_sshd_log(path: str | Path, lines: int, seed: int) -> None:
    """Write exactly `lines` lines of a realistic auth.log to `path`; the same seed gives the same file."""
    rng = random.Random(seed)
    start = datetime(2024, 2, 1) + timedelta(days=rng.randint(0, 250), seconds=rng.randint(0, 86399))
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        log = _Log(handle, lines, rng, start)
        _Generator(log, rng).run()


if __name__ == "__main__":  # python -m tests.guard.sshdlogs OUT LINES [SEED]
    import sys

    write_sshd_log(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
