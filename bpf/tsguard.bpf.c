// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * tsguard kernel side: TCP state transitions, filtered in the kernel by the
 * plan (engine/plan/plan.h), owners attributed in process context, TIME_WAIT
 * entry derived. See docs/kernel.md.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tsguard_bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define NS TSG_BPF_NSTATES

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set before load. */
const volatile __u32 netns_ino = 0; /* only this network namespace; 0: all */
const volatile __u32 fallback = 0;  /* the classic tracepoint (fb_socks) is in use */
/* Wake the reader only at every this many-th record a CPU submits (0: at
 * every one); the reader also polls on its own every few milliseconds. A
 * per-CPU count, not the ring's fill (bpf_ringbuf_query): that reads the
 * positions the reader and the other CPUs write, a cache miss per event. */
const volatile __u32 wakeup_events = 0;

/* Written by user space at run time. */
struct tsg_bpf_cfg cfg = {};
__u32 iter_tw_only = 0; /* iterator: timewait and request sockets only */
__u32 iter_no_tw = 0;	/* iterator: no timewait sockets (the kernel reports their ends) */
/* iterator, light pass without timewait sockets: the namespace being read
 * (0: none yet, reset by user space) and its request sockets not seen yet */
__u32 iter_req_ns = 0;
__s64 iter_req_left = 0;
/* 1: only namespaces in netns_allow pass (the rules name namespaces) */
__u32 netns_filter = 0;
/* 1: cgroups whose verdict of generation cg_gen is DENY are dropped (every
 * rule names containers or pods) */
__u32 cg_filter = 0;
__u32 cg_gen = 0;
__u64 fb_next_id = 0;

/* ---- plan maps ---------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NS * NS);
	__type(key, __u32);
	__type(value, __u64);
} trans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} family SEC(".maps");

/* the slot bits of each port, host byte order */
#define PORT_MAP(name)                                \
	struct {                                      \
		__uint(type, BPF_MAP_TYPE_ARRAY);     \
		__uint(max_entries, 65536);           \
		__type(key, __u32);                   \
		__type(value, __u64);                 \
	} name SEC(".maps")

PORT_MAP(lport);
PORT_MAP(rport);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tsg_bpf_lpm_key);
	__type(value, __u64);
} laddr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tsg_bpf_lpm_key);
	__type(value, __u64);
} raddr SEC(".maps");

struct comm_key {
	char comm[TSG_BPF_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct comm_key);
	__type(value, __u64);
} comm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u64);
} uid SEC(".maps");

/* ---- state --------------------------------------------------------------- */

/*
 * Per CPU, one element: the counters (user space reads c[]) and the dedup
 * ring of the two attached copies (below), so that a transition costs one
 * map lookup for all of them.
 */
struct pcpu {
	__u64 c[TSG_BPF_C_N];
	__u64 sk[4]; /* dedup: the transitions copy A handled: socket address, */
	__u8 st[4];  /* and its from << 4 | to */
	__u32 pos;
	__u32 unwoken; /* records submitted without a wakeup (wakeup_events) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pcpu);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by user space */
} events SEC(".maps");

/* Per socket: owner, cached verdict, time of the current state. */
struct sk_state {
	__u64 cookie; /* of the socket the value belongs to (clones differ) */
	__u64 since;  /* when the socket entered its current state; 0 unknown */
	__u64 cgroup_id;
	__u64 bits;   /* cached attribute verdict (without trans) */
	__u32 gen;    /* cfg.gen of `bits`; 0: none */
	__u32 pid;
	__u16 lport, rport; /* the ports `bits` was computed for */
	__u8 owner;
	__u8 sent;    /* an event of this socket crossed: its end crosses too */
	__u8 rst;     /* a reset was sent: ->CLOSE is not TIME_WAIT */
	__u8 last;    /* the last transition crossed: user space holds the
		       * socket in that state, so the next one (its leave) crosses */
	char comm[TSG_BPF_COMM_LEN];
	__u8 acc; /* accepted child: accept() may name its owner (acc_owner) */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sk_state);
} sk_stor SEC(".maps");

/* Classic tracepoint fallback: no socket storage there, key by address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144); /* set by user space */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct sk_state);
} fb_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* listening port */
	__type(value, struct sk_state);
} fb_listen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sk_state);
} scratch SEC(".maps");


/*
 * Owners named by accept() (the process now holding the socket), by socket
 * cookie: the syscall's tracepoint cannot reach socket storage, so the
 * socket's next transition moves the owner there (accept_owner_take).
 */
struct acc_owner {
	__u64 cgroup_id;
	__u32 pid;
	char comm[TSG_BPF_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* socket cookie */
	__type(value, struct acc_owner);
} acc_owner SEC(".maps");

/* Entries put into acc_owner (a hint, never below the true number: a socket
 * looks there only while it is not 0). */
__u64 acc_pending = 0;

/* ---- helpers ------------------------------------------------------------- */

static __always_inline struct pcpu *pcpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

/* idx is a constant at every call */
static __always_inline void count_in(struct pcpu *pc, __u32 idx)
{
	if (pc && idx < TSG_BPF_C_N)
		pc->c[idx] += 1;
}

static __always_inline void count(__u32 idx)
{
	count_in(pcpu(), idx);
}

static __always_inline __u64 lookup_u64(void *map, const void *key)
{
	__u64 *v = bpf_map_lookup_elem(map, key);

	return v ? *v : 0;
}

/* The slots the ports pass: a look-up of each port array, unless no rule
 * names a port of that side (cfg.skip, TSG_BPF_SKIP_LPORT / _RPORT). */
static __always_inline __u64 port_bits(__u32 lp, __u32 rp)
{
	__u32 skip = cfg.skip;
	__u64 b = skip & TSG_BPF_SKIP_LPORT ? cfg.lport_all : lookup_u64(&lport, &lp);

	if (!b)
		return 0;
	return b & (skip & TSG_BPF_SKIP_RPORT ? cfg.rport_all : lookup_u64(&rport, &rp));
}

static __always_inline __u32 sk_netns(const struct sock_common *skc)
{
	return BPF_CORE_READ(skc, skc_net.net, ns.inum);
}

/* The socket's own cgroup v2 id (set when it was created; an accepted
 * socket has its listener's). 0 when the kernel has no such field.
 * `direct`: sk is a BTF pointer (tp_btf), plain loads. */
static __always_inline __u64 sk_cgroup_id_x(const struct sock *sk, bool direct)
{
	if (!bpf_core_field_exists(sk->sk_cgrp_data.cgroup))
		return 0;
	if (direct) /* BTF pointers: a NULL on the way reads as 0 */
		return sk->sk_cgrp_data.cgroup->kn->id;
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline __u64 sk_cgroup_id(const struct sock *sk)
{
	return sk_cgroup_id_x(sk, false);
}

/* A zeroed ring buffer record stamped now, or NULL (counted as lost). */
static __always_inline struct tsg_bpf_event *event_new(struct pcpu *pc)
{
	struct tsg_bpf_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_in(pc, TSG_BPF_C_LOST);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	return e;
}

#include "tsguard_gate.bpf.h"
#include "tsguard_listen.bpf.h"

/* tp_btf: the socket's cookie, a plain load once the kernel made one, else
 * the helper (which makes it); taken only when needed (lazily) */
static __always_inline __u64 sk_cookie(struct sock *sk)
{
	__u64 c = sk->__sk_common.skc_cookie.counter;

	return c ? c : bpf_get_socket_cookie(sk);
}

#include "tsguard_tuple.bpf.h"

static __always_inline void record_owner(struct sk_state *st)
{
	st->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(st->comm, sizeof(st->comm));
	st->cgroup_id = bpf_get_current_cgroup_id();
	st->owner = 1;
	st->gen = 0;
}

/*
 * The socket-attribute part of the plan: everything but trans. `owner_late`:
 * the owner runs now (connect) but is not recorded yet; it is recorded only
 * when the other attributes pass (its comm is the last filter), so that a
 * socket that cannot matter costs no owner.
 */
static __always_inline __u64 attr_bits(const struct tuple *t, struct sk_state *st, __u32 suid,
				       bool owner_late)
{
	struct tsg_bpf_lpm_key k = { .prefixlen = 128 };
	__u32 i, skip;
	__u64 b, *v;

	i = t->family == 4 ? 0 : 1;
	b = lookup_u64(&family, &i);
	if (!b)
		return 0;
	b &= port_bits(t->lport, t->rport);
	if (!b)
		return 0;
	skip = cfg.skip; /* maps that hold nothing to look up (no rule names one) */
	if (skip & TSG_BPF_SKIP_LADDR) {
		b &= cfg.laddr_all;
	} else {
		__builtin_memcpy(k.addr, t->laddr, 16);
		b &= lookup_u64(&laddr, &k);
	}
	if (skip & TSG_BPF_SKIP_RADDR) {
		b &= cfg.raddr_all;
	} else {
		__builtin_memcpy(k.addr, t->raddr, 16);
		b &= lookup_u64(&raddr, &k);
	}
	if (!b)
		return 0;
	v = skip & TSG_BPF_SKIP_UID ? NULL : bpf_map_lookup_elem(&uid, &suid);
	b &= v ? *v : cfg.uid_default;
	if (!b)
		return 0;
	if (owner_late)
		record_owner(st);
	if (st->owner && !(skip & TSG_BPF_SKIP_COMM)) {
		struct comm_key ck;

		__builtin_memcpy(ck.comm, st->comm, TSG_BPF_COMM_LEN);
		v = bpf_map_lookup_elem(&comm, &ck);
		b &= v ? *v : cfg.comm_default;
	} else {
		b &= cfg.comm_default; /* as tsg_plan_eval() for an unknown comm */
	}
	return b;
}

/*
 * FIN_WAIT2/CLOSING -> CLOSE: did the socket become a timewait socket?
 * tcp_time_wait() leaves no mark on the full socket, so exclude the other
 * ways there: a received reset or a timeout set sk_err, a sent reset was
 * marked by tcp_send_reset, linger2 < 0 aborts, and with the timewait
 * buckets exhausted no timewait socket is created.
 */
static __always_inline bool became_timewait(struct sock *sk, const struct sk_state *st, bool direct)
{
	struct net *net;
	int tw, max;

	if (st->rst)
		return false;
	if (direct) { /* tp_btf: sk is a BTF pointer, plain loads */
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

		if (sk->sk_err || (tp && tp->linger2 < 0))
			return false;
		net = sk->__sk_common.skc_net.net;
		tw = net->ipv4.tcp_death_row.tw_refcount.refs.counter;
		max = net->ipv4.tcp_death_row.sysctl_max_tw_buckets;
		return tw - 1 <= max;
	}
	if (BPF_CORE_READ(sk, sk_err))
		return false;
	if (BPF_CORE_READ((struct tcp_sock *)sk, linger2) < 0)
		return false;
	net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	tw = BPF_CORE_READ(net, ipv4.tcp_death_row.tw_refcount.refs.counter);
	max = BPF_CORE_READ(net, ipv4.tcp_death_row.sysctl_max_tw_buckets);
	if (tw - 1 > max)
		return false;
	return true;
}

/*
 * The state of the timewait socket that replaced sk (became_timewait): an
 * orphan (closed by its application) becomes a timewait socket already in
 * FIN_WAIT2, before the peer's FIN (tcp_close, the FIN_WAIT1 ack, the
 * keepalive timer: tcp_time_wait(sk, TCP_FIN_WAIT2, ...)); a received FIN
 * (tcp_fin sets SOCK_DONE first) or CLOSING gives TIME_WAIT.
 */
static __always_inline __u32 tw_substate(struct sock *sk, __u32 from, bool direct)
{
	unsigned long flags = SKC_READ(direct, &sk->__sk_common, skc_flags);

	if (from == TSG_BPF_TCP_FIN_WAIT2 &&
	    !(flags & (1ul << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		return TSG_BPF_TCP_FIN_WAIT2;
	return TSG_BPF_TCP_TIME_WAIT;
}

/* An accepted socket: the owner its accept() named, if that ran yet. */
static __always_inline void accept_owner_take(struct sk_state *st, __u64 cookie)
{
	struct acc_owner *o = bpf_map_lookup_elem(&acc_owner, &cookie);

	if (!o)
		return;
	st->pid = o->pid;
	st->cgroup_id = o->cgroup_id;
	__builtin_memcpy(st->comm, o->comm, TSG_BPF_COMM_LEN);
	st->owner = 1;
	st->gen = 0;
	st->acc = 0;
	if (bpf_map_delete_elem(&acc_owner, &cookie) == 0)
		__sync_fetch_and_add(&acc_pending, -1);
}

static __always_inline void event_tuple(struct tsg_bpf_event *e, const struct tuple *t)
{
	__builtin_memcpy(e->laddr, t->laddr, 16);
	__builtin_memcpy(e->raddr, t->raddr, 16);
	e->lport = t->lport;
	e->rport = t->rport;
	e->family = t->family;
}

static __always_inline void submit_pc(struct tsg_bpf_event *e, struct pcpu *pc)
{
	if (wakeup_events && pc && ++pc->unwoken < wakeup_events) {
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
		return;
	}
	if (pc)
		pc->unwoken = 0;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void send_event(struct sock *sk, const struct sk_state *st,
				       const struct tuple *t, struct pcpu *pc, __u64 now,
				       __u64 since, __u64 cookie, __u32 suid, __u32 from, __u32 to,
				       __u8 flags, __u32 netns)
{
	struct tsg_bpf_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_in(pc, TSG_BPF_C_LOST);
		return;
	}
	e->ts_ns = now;
	e->since_ns = since;
	e->cookie = cookie;
	e->cgroup_id = st->owner ? st->cgroup_id : 0;
	e->pid = st->owner ? st->pid : 0;
	e->uid = suid;
	event_tuple(e, t);
	e->from = from;
	e->to = to;
	if (st->owner) {
		flags |= TSG_BPF_F_OWNER;
		__builtin_memcpy(e->comm, st->comm, TSG_BPF_COMM_LEN);
	} else {
		__builtin_memset(e->comm, 0, TSG_BPF_COMM_LEN);
	}
	e->flags = flags;
	e->netns = netns;
	e->pad2 = 0;
	e->sk_cgroup = sk_cgroup_id_x(sk, !(flags & TSG_BPF_F_FALLBACK));
	submit_pc(e, pc);
	count_in(pc, TSG_BPF_C_SENT);
}

/* ->CLOSE runs after inet_put_port(): skc_num is 0 then, inet_sport (the
 * port the socket had) stays. 0 when sk is no full TCP socket. */
static __always_inline __u16 released_lport(struct sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	return tp ? bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport) : 0;
}

/* The slots of trans that want from -> to; `tw`: the socket goes on as a
 * timewait socket, which user space follows to report what the scan finds
 * (FIN_WAIT2 -> TIME_WAIT, the exit), so those pairs count too. */
static __always_inline __u64 trans_bits(__u32 from, __u32 to, bool tw)
{
	__u32 idx = from * NS + to;
	__u64 tb = lookup_u64(&trans, &idx);

	if (!tw)
		return tb;
	idx = TSG_BPF_TCP_TIME_WAIT * NS + TSG_BPF_TCP_CLOSE;
	tb |= lookup_u64(&trans, &idx);
	if (to != TSG_BPF_TCP_FIN_WAIT2)
		return tb;
	idx = TSG_BPF_TCP_FIN_WAIT2 * NS + TSG_BPF_TCP_TIME_WAIT;
	tb |= lookup_u64(&trans, &idx);
	idx = TSG_BPF_TCP_FIN_WAIT2 * NS + TSG_BPF_TCP_CLOSE;
	return tb | lookup_u64(&trans, &idx);
}

/*
 * One transition of sk. st: its state; with `fresh` (tp_btf, the socket has
 * no storage yet) a zeroed per-CPU scratch that is stored (sk_storage
 * created from it) only when the socket can matter: its attributes pass
 * some rule slot, it listens (accepted sockets inherit its owner through
 * BPF_F_CLONE), it is accepted from a listener without storage, it connects
 * with all attributes but its comm passing (the comm is known only now), or
 * every transition is recorded. A socket that
 * cannot matter costs no storage, no owner and no clock read; its later
 * transitions recompute the verdict from the tuple, which does not change
 * (the local port at ->CLOSE: inet_sport). docs/kernel.md.
 */
static __always_inline int process(struct sock *sk, int oldstate, int newstate,
				   struct sk_state *st, __u64 cookie, __u8 flags, __u32 netns,
				   bool fresh, struct pcpu *pc)
{
	struct tuple t = {};
	__u64 now = 0, bits, since = 0;
	__u32 gen, suid, from = oldstate, to = newstate;
	bool direct = !(flags & TSG_BPF_F_FALLBACK); /* tp_btf: sk is a BTF pointer */
	bool end, own = from == TSG_BPF_TCP_CLOSE &&
			(to == TSG_BPF_TCP_SYN_SENT || to == TSG_BPF_TCP_LISTEN);

	if (own && (!fresh || to == TSG_BPF_TCP_LISTEN))
		record_owner(st); /* connect() / listen(): the owning process runs */

	read_tuple_x(&sk->__sk_common, &t, direct);
	/* ->CLOSE runs after inet_put_port(): the local port is already 0
	 * (inet_sport, which stays, for a socket without storage) */
	if (!t.lport && oldstate != TSG_BPF_TCP_CLOSE)
		t.lport = st->lport ? st->lport : fresh ? released_lport(sk) : 0;
	suid = direct ? sk->sk_uid.val : BPF_CORE_READ(sk, sk_uid.val);
	gen = cfg.gen;
	if (st->gen != gen || st->lport != t.lport || st->rport != t.rport) {
		st->bits = attr_bits(&t, st, suid, own && fresh);
		st->gen = gen;
		st->lport = t.lport;
		st->rport = t.rport;
	}
	if (to == TSG_BPF_TCP_CLOSE &&
	    (from == TSG_BPF_TCP_FIN_WAIT2 || from == TSG_BPF_TCP_CLOSING) &&
	    became_timewait(sk, st, direct)) {
		/* an orphan's FIN_WAIT2 goes on as a timewait socket: from == to */
		to = tw_substate(sk, from, direct);
		flags |= TSG_BPF_F_TW;
		count_in(pc, TSG_BPF_C_TW);
	}
	if (from >= NS || to >= NS)
		return 0;
	bits = trans_bits(from, to, flags & TSG_BPF_F_TW) & st->bits;
	end = to == TSG_BPF_TCP_CLOSE || (flags & TSG_BPF_F_TW);
	/* owner: recorded (listen, or a connect whose other attributes pass):
	 * the comm filter can only be known now; a child of a listener without
	 * storage (it predates tsguard): accept() reads its storage to tell a
	 * socket seen here from one that predates tsguard */
	if (fresh && !end &&
	    (st->bits || cfg.record_all || st->owner || from == TSG_BPF_TCP_LISTEN)) {
		struct sk_state *s;

		if (from != TSG_BPF_TCP_CLOSE && from != TSG_BPF_TCP_LISTEN)
			st->sent = 1; /* met mid-life (a reload): let its end through */
		if (direct && !cookie)
			cookie = sk_cookie(sk);
		st->cookie = cookie;
		s = bpf_sk_storage_get(&sk_stor, sk, st, BPF_SK_STORAGE_GET_F_CREATE);
		if (s) {
			st = s;
			fresh = false;
		} else {
			count_in(pc, TSG_BPF_C_MAP_FULL);
		}
	}
	if (!fresh && (st->bits || st->sent || st->last || cfg.record_all)) {
		now = bpf_ktime_get_ns();
		since = st->since;
		st->since = now;
	} else if (!fresh) {
		/* no slot wants the socket: nothing of it crosses until the plan
		 * changes, and then its state's start is unknown (the reload's
		 * snapshot gives it), not a stale time */
		st->since = 0;
	}
	if (!bits && !cfg.record_all && !(st->sent && end) && !st->last) {
		count_in(pc, TSG_BPF_C_FILTERED);
		return 0;
	}
	st->sent = 1;
	st->last = bits != 0;
	if (!now)
		now = bpf_ktime_get_ns();
	if (direct && !cookie)
		cookie = sk_cookie(sk);
	send_event(sk, st, &t, pc, now, since, cookie, suid, from, to, flags, netns);
	return 0;
}

/*
 * tp_btf, a socket without storage: can this transition matter? Not when
 * its ports pass no rule slot (lport & rport, as attr_bits), nothing is
 * recorded, and it neither listens nor is accepted (process() would store
 * it then). Decided on the ports alone, before any scratch state is
 * touched: what process() would do for it is count it as filtered.
 */
static __always_inline bool fresh_unwanted(struct sock *sk, int oldstate, int newstate)
{
	__u32 lp = sk->__sk_common.skc_num, rp = bpf_ntohs(sk->__sk_common.skc_dport);

	if (cfg.record_all || oldstate == TSG_BPF_TCP_LISTEN || newstate == TSG_BPF_TCP_LISTEN)
		return false;
	if (!lp && oldstate != TSG_BPF_TCP_CLOSE)
		lp = released_lport(sk); /* ->CLOSE: as process() */
	return !port_bits(lp, rp);
}

/* slot 0: copy A and the classic tracepoint; slot 1: copy B, which runs
 * nested inside copy A (a softirq) while A may be using slot 0 */
static __always_inline struct sk_state *scratch_state(__u32 slot)
{
	struct sk_state *st = bpf_map_lookup_elem(&scratch, &slot);

	if (st)
		__builtin_memset(st, 0, sizeof(*st));
	return st;
}

/* ---- BTF tracepoint (preferred) --------------------------------------------- */

/*
 * A tracing program does not nest on one CPU: when a softirq interrupts
 * the program (running in process context, e.g. for connect()), the
 * transitions of that softirq are skipped by the kernel ("recursion
 * misses"), about 1% under loopback churn. So the same handler is attached
 * twice: copy A handles every transition it gets and notes it in a small
 * per-CPU ring (struct pcpu.sk/st, beside the counters: one lookup); copy B
 * (running right after A for the same transition) handles only what A did
 * not note, i.e. what A missed while nested. The note is the socket's
 * address and the two states: a plain store and compare (tsguard runs with
 * CAP_PERFMON, which lets the verifier allow both), no cookie helper.
 */
static __always_inline __u8 trans_st(int oldstate, int newstate)
{
	return (__u8)(((oldstate & 15) << 4) | (newstate & 15));
}

/* slot: the copy's scratch slot. The cookie is taken only where it is
 * needed: a stored socket (its storage names it), an event, a new storage. */
static __always_inline int handle_btf(struct sock *sk, int oldstate, int newstate, struct pcpu *pc,
				      __u32 slot)
{
	struct sk_state *st;
	bool fresh = false;
	__u64 cookie = 0;
	__u32 ns, gate;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	/* a plain load, no helper call: sk is a BTF pointer */
	ns = sk->__sk_common.skc_net.net->ns.inum;
	listen_change(ns, oldstate, newstate);
	gate = gate_of(sk, ns, pc, true);
	if (gate != TSG_BPF_C_N) {
		/* a socket that crossed before a reload (or a verdict) unwatched
		 * its namespace or cgroup still sends its end (sk_state.sent);
		 * not an accepted child whose storage, cloned from its
		 * listener, says `sent` of the listener */
		st = sk->sk_bpf_storage ? bpf_sk_storage_get(&sk_stor, sk, 0, 0) : NULL;
		if (!st || !st->sent || st->cookie != (cookie = sk_cookie(sk))) {
			count_in(pc, gate);
			return 0;
		}
	}
	count_in(pc, TSG_BPF_C_SEEN);
	/* created by process() only if the socket can matter; a socket with no
	 * storage of any map needs no helper call to say so (a plain load) */
	st = sk->sk_bpf_storage ? bpf_sk_storage_get(&sk_stor, sk, 0, 0) : NULL;
	if (!st) {
		if (fresh_unwanted(sk, oldstate, newstate)) {
			count_in(pc, TSG_BPF_C_FILTERED);
			return 0;
		}
		st = scratch_state(slot);
		if (!st)
			return 0;
		/* st->cookie: set by process() when it stores or sends */
		st->acc = oldstate == TSG_BPF_TCP_LISTEN; /* a child: accept() names its owner */
		fresh = true;
	} else if (st->cookie != (cookie = sk_cookie(sk))) {
		/* cloned from the listener: keep only the owner */
		st->cookie = cookie;
		st->since = 0;
		st->gen = 0;
		st->sent = 0;
		st->last = 0;
		st->rst = 0;
		st->acc = oldstate == TSG_BPF_TCP_LISTEN; /* a child: accept() names its owner */
	}
	if (st->acc && acc_pending && oldstate != TSG_BPF_TCP_LISTEN)
		accept_owner_take(st, cookie ? cookie : (cookie = sk_cookie(sk)));
	return process(sk, oldstate, newstate, st, cookie, 0, ns, fresh, pc);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tsg_set_state_btf, struct sock *sk, int oldstate, int newstate)
{
	struct pcpu *pc = pcpu();

	if (pc) {
		__u32 i = pc->pos & 3;

		pc->sk[i] = (__u64)sk;
		pc->st[i] = trans_st(oldstate, newstate);
		pc->pos++;
	}
	return handle_btf(sk, oldstate, newstate, pc, 0);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tsg_set_state_btf2, struct sock *sk, int oldstate, int newstate)
{
	struct pcpu *pc = pcpu();
	__u8 ts = trans_st(oldstate, newstate);

	if (!pc)
		return 0;
	for (int i = 0; i < 4; i++) {
		if (pc->sk[i] == (__u64)sk && pc->st[i] == ts) {
			pc->sk[i] = 0;
			return 0; /* copy A handled it */
		}
	}
	count_in(pc, TSG_BPF_C_NESTED);
	return handle_btf(sk, oldstate, newstate, pc, 1);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tsg_send_reset_btf, struct sock *sk)
{
	struct sk_state *st;

	if (!sk)
		return 0;
	st = bpf_sk_storage_get(&sk_stor, sk, 0, 0);
	if (st)
		st->rst = 1;
	return 0;
}

/* ---- classic tracepoint (fallback) ------------------------------------------- */

SEC("tracepoint/sock/inet_sock_set_state")
int tsg_set_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	__u64 key = (__u64)ctx->skaddr, cookie;
	int oldstate = ctx->oldstate, newstate = ctx->newstate;
	struct sk_state *st, *lst;
	__u32 lp, ns, gate;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	ns = sk_netns(&sk->__sk_common);
	listen_change(ns, oldstate, newstate);
	st = bpf_map_lookup_elem(&fb_socks, &key);
	gate = gate_of(sk, ns, pcpu(), false);
	if (gate != TSG_BPF_C_N && !(st && st->sent)) {
		count(gate);
		return 0;
	}
	count(TSG_BPF_C_SEEN);
	if (!st) {
		struct sk_state *z = scratch_state(0);

		if (!z)
			return 0;
		cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
		if (!cookie)
			cookie = (1ull << 63) | __sync_fetch_and_add(&fb_next_id, 1);
		z->cookie = cookie;
		if (oldstate == TSG_BPF_TCP_LISTEN) {
			/* an accepted child: the listener's owner */
			lp = BPF_CORE_READ(sk, __sk_common.skc_num);
			lst = bpf_map_lookup_elem(&fb_listen, &lp);
			if (lst && lst->owner) {
				z->owner = 1;
				z->pid = lst->pid;
				z->cgroup_id = lst->cgroup_id;
				__builtin_memcpy(z->comm, lst->comm, TSG_BPF_COMM_LEN);
			}
		}
		if (bpf_map_update_elem(&fb_socks, &key, z, BPF_NOEXIST) == 0)
			st = bpf_map_lookup_elem(&fb_socks, &key);
		if (!st) {
			count(TSG_BPF_C_MAP_FULL);
			st = z;
			st->sent = 1;
		}
	}
	cookie = st->cookie;
	process(sk, oldstate, newstate, st, cookie, TSG_BPF_F_FALLBACK, ns, false, pcpu());
	if (newstate == TSG_BPF_TCP_LISTEN && oldstate == TSG_BPF_TCP_CLOSE) {
		lp = BPF_CORE_READ(sk, __sk_common.skc_num);
		bpf_map_update_elem(&fb_listen, &lp, st, BPF_ANY);
	} else if (oldstate == TSG_BPF_TCP_LISTEN && newstate == TSG_BPF_TCP_CLOSE) {
		lp = BPF_CORE_READ(sk, __sk_common.skc_num);
		bpf_map_delete_elem(&fb_listen, &lp);
	}
	if (newstate == TSG_BPF_TCP_CLOSE)
		bpf_map_delete_elem(&fb_socks, &key);
	return 0;
}

SEC("tracepoint/tcp/tcp_send_reset")
int tsg_send_reset_tp(struct trace_event_raw_tcp_send_reset *ctx)
{
	__u64 key = (__u64)ctx->skaddr;
	struct sk_state *st;

	if (!key)
		return 0;
	st = bpf_map_lookup_elem(&fb_socks, &key);
	if (st)
		st->rst = 1;
	return 0;
}

#include "tsguard_sys.bpf.h"
#include "tsguard_tw.bpf.h"

#include "tsguard_iter.bpf.h"
#include "tsguard_act.bpf.h"
