/* SPDX-License-Identifier: MIT */
/*
 * tsguard: live capture (capture.h): loads bpf/tsguard.bpf.c through its
 * skeleton (tp_btf, or the classic tracepoint), attaches, turns ring buffer
 * records into struct tsg_event, polls, counts, frees. The other concerns
 * have their own files (capture_priv.h): the filter maps, owners, TIME_WAIT
 * tracking, the snapshot. docs/kernel.md.
 */
#include "capture_priv.h"
#include "container.h"
#include "log.h"
#include "tsguard.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(sizeof(struct tsg_bpf_event) == 112, "tsg_bpf_event layout");
_Static_assert(sizeof(struct tsg_bpf_iter_rec) == 104, "tsg_bpf_iter_rec layout");
_Static_assert(TSG_BPF_NSTATES == TSG_NSTATES, "state count");
_Static_assert(TSG_BPF_COMM_LEN == TSG_COMM_LEN, "comm length");

/* Wakeup batching (see tsguard.bpf.c wakeup_events): the reader is woken
 * when about this much waits, split between the CPUs. */
#define WAKEUP_BYTES (64u << 10)
#define BATCH_MS     10
#define LOST_LOG_NS  TSG_NSEC_PER_SEC

/* ---- libbpf logging ------------------------------------------------------ */

static bool libbpf_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static char buf[16384];
	size_t n;

	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	/* a failed tp_btf attempt is expected on some kernels: debug level */
	tsg_log(LOG_DEBUG, "libbpf: %s", buf);
	return 0;
}

/* ---- privileges, BTF ------------------------------------------------------ */

static bool has_caps_for_bpf(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {0};
	int bpf = 39, perfmon = 38, sysadmin = CAP_SYS_ADMIN;

	if (syscall(SYS_capget, &h, d))
		return false;
#define HAS(c) (d[(c) / 32].effective & (1u << ((c) % 32)))
	return HAS(sysadmin) || (HAS(bpf) && HAS(perfmon));
#undef HAS
}

static int ensure_tracefs(void)
{
	if (access("/sys/kernel/tracing/events/sock/inet_sock_set_state", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events/sock/inet_sock_set_state", F_OK) == 0)
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL)) {
		int err = -errno;

		log_err("capture: cannot mount tracefs on /sys/kernel/tracing: %s", strerror(-err));
		return err;
	}
	log_info("capture: mounted tracefs on /sys/kernel/tracing (classic tracepoint fallback)");
	return 0;
}

/* ---- ring buffer ------------------------------------------------------------------ */

void cap_deliver(struct tsg_capture *c, const struct tsg_event *ev)
{
	c->delivered++;
	if (c->cb)
		c->cb(c->cb_ctx, ev);
}

void cap_info_from_bpf(struct tsg_sockinfo *in, const uint8_t *la, const uint8_t *ra, uint16_t lp,
		       uint16_t rp, uint8_t family)
{
	memset(in, 0, sizeof(*in));
	in->have = TSG_HAVE(TSG_SF_FAMILY) | TSG_HAVE(TSG_SF_LADDR) | TSG_HAVE(TSG_SF_LPORT) |
		   TSG_HAVE(TSG_SF_RADDR) | TSG_HAVE(TSG_SF_RPORT);
	in->family = family;
	memcpy(in->laddr, la, 16);
	memcpy(in->raddr, ra, 16);
	in->lport = lp;
	in->rport = rp;
	/* a connect is reported before its source port is chosen: port 0 is
	 * "not known yet", not a port (the next transition carries it) */
	if (!lp)
		in->have &= ~TSG_HAVE(TSG_SF_LPORT);
	tsg_sockinfo_norm_family(in); /* the BPF side's rule, kept in one place */
}

void cap_info_netns(struct tsg_capture *c, struct tsg_sockinfo *in, uint32_t netns)
{
	if (!netns)
		return;
	in->netns = netns;
	in->have |= TSG_HAVE(TSG_SF_NETNS);
	in->netns_name = cap_netns_name(c, netns);
	if (in->netns_name)
		in->have |= TSG_HAVE(TSG_SF_NETNS_NAME);
}

void cap_info_cgroup(struct tsg_capture *c, struct tsg_sockinfo *in, uint64_t sk_cgroup)
{
	/* the socket's own cgroup wins over its owner's (rules.md: the
	 * cgroup of the process that created it); container and pod from it */
	if (cap_cgroup_ident(c, sk_cgroup, in))
		return;
	if (in->have & TSG_HAVE(TSG_SF_CGROUP))
		tsg_sockinfo_set_cgroup(in, in->cgroup);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct tsg_capture *c = ctx;
	const struct tsg_bpf_event *e = data;
	struct tsg_event ev = {0};

	if (size < sizeof(*e))
		return 0;
	if (e->flags & TSG_BPF_F_CGROUP) {
		cap_cgate_ask(c, e->sk_cgroup, e->pid);
		return 0;
	}
	if (e->flags & TSG_BPF_F_TWEND) {
		cap_info_from_bpf(&ev.info, e->laddr, e->raddr, e->lport, e->rport, e->family);
		ev.info.netns = e->netns;
		cap_tw_kernel(c, &ev.info, e->cookie, e->to, e->ts_ns);
		return 0;
	}
	ev.ts_ns = e->ts_ns;
	ev.sk = e->cookie;
	ev.from = e->from < TSG_NSTATES ? e->from : TSG_STATE_NONE;
	ev.to = e->to;
	ev.since_ns = e->since_ns;
	if (ev.to >= TSG_NSTATES)
		return 0;
	cap_info_from_bpf(&ev.info, e->laddr, e->raddr, e->lport, e->rport, e->family);
	ev.info.uid = e->uid;
	ev.info.have |= TSG_HAVE(TSG_SF_UID);
	if (e->flags & TSG_BPF_F_OWNER) {
		/* straight into the event (ev.info has no owner fields yet) */
		ev.info.pid = e->pid;
		memcpy(ev.info.comm, e->comm, TSG_COMM_LEN);
		ev.info.comm[TSG_COMM_LEN - 1] = 0;
		ev.info.have |= TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM);
		ev.info.cgroup = cap_cgroup_path(c, e->cgroup_id);
		if (ev.info.cgroup)
			ev.info.have |= TSG_HAVE(TSG_SF_CGROUP);
	}
	cap_netns_event(c, e->netns);
	cap_info_netns(c, &ev.info, e->netns);
	if ((e->flags & TSG_BPF_F_TW) && ev.to == TSG_FIN_WAIT2) {
		/* an orphan goes on in FIN_WAIT2 as a timewait socket: not a
		 * transition; followed until the scan finds it in TIME_WAIT or
		 * gone. Its full socket ended: forget what was kept for it. */
		ev.to = TSG_CLOSE;
		cap_owners_apply(c, &ev);
		ev.to = TSG_FIN_WAIT2;
		cap_info_cgroup(c, &ev.info, e->sk_cgroup);
		cap_tw_enter(c, &ev);
		return 0;
	}
	cap_owners_apply(c, &ev);
	cap_info_cgroup(c, &ev.info, e->sk_cgroup);
	if (ev.to == TSG_ESTABLISHED && c->tw_n)
		cap_tw_taken_over(c, &ev); /* its 4-tuple's timewait socket is gone */
	cap_deliver(c, &ev);
	if (ev.to == TSG_TIME_WAIT)
		cap_tw_enter(c, &ev);
	return 0;
}

/* The counters: one per-CPU element whose value starts with the
 * TSG_BPF_C_N counters (struct pcpu in tsguard.bpf.c). */
static void read_counters(const struct tsg_capture *c, uint64_t out[TSG_BPF_C_N])
{
	int ncpu = libbpf_num_possible_cpus();
	size_t vsz = (bpf_map__value_size(c->skel->maps.counters) + 7) / 8;
	uint32_t zero = 0;
	uint64_t *v;

	memset(out, 0, sizeof(uint64_t) * TSG_BPF_C_N);
	if (ncpu <= 0 || vsz < TSG_BPF_C_N || !(v = calloc((size_t)ncpu * vsz, sizeof(uint64_t))))
		return;
	if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.counters), &zero, v) == 0)
		for (int cpu = 0; cpu < ncpu; cpu++)
			for (uint32_t i = 0; i < TSG_BPF_C_N; i++)
				out[i] += v[(size_t)cpu * vsz + i];
	free(v);
}

/* The kernel's count of runs of a program it skipped (a run nested on one CPU). */
static uint64_t prog_misses(const struct bpf_program *p)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (!p || bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) < 0)
		return 0;
	return info.recursion_misses;
}

/*
 * A transition the first attached copy skipped and the second did not
 * handle (both were busy on that CPU) is lost like a ring buffer drop: the
 * first copy's skipped runs beyond what the second handled (C_NESTED).
 */
static void check_nested(struct tsg_capture *c, const uint64_t cnt[TSG_BPF_C_N])
{
	uint64_t miss, lost;

	if (c->fallback)
		return;
	miss = prog_misses(c->skel->progs.tsg_set_state_btf);
	lost = miss > cnt[TSG_BPF_C_NESTED] ? miss - cnt[TSG_BPF_C_NESTED] : 0;
	if (lost <= c->last_nest_lost)
		return;
	log_warn("capture: %" PRIu64 " transitions skipped by the kernel (nested runs on one CPU, "
		 "%" PRIu64 " in total); %s",
		 lost - c->last_nest_lost, lost,
		 c->held_foreach ? "resyncing with the kernel"
				 : "states of the sockets concerned may be stale");
	c->last_nest_lost = lost;
	cap_rc_lost(c);
}

static void check_lost(struct tsg_capture *c)
{
	uint64_t cnt[TSG_BPF_C_N], t = tsg_mono_ns();

	if (t - c->last_lost_log < LOST_LOG_NS)
		return;
	c->last_lost_log = t;
	read_counters(c, cnt);
	check_nested(c, cnt);
	if (cnt[TSG_BPF_C_LOST] > c->last_lost) {
		log_warn("capture: ring buffer full: %" PRIu64 " events lost (%" PRIu64
			 " in total); %s",
			 cnt[TSG_BPF_C_LOST] - c->last_lost, cnt[TSG_BPF_C_LOST],
			 c->held_foreach ? "resyncing with the kernel"
					 : "states of the sockets concerned may be stale");
		c->last_lost = cnt[TSG_BPF_C_LOST];
		cap_rc_lost(c);
	}
	if (cnt[TSG_BPF_C_MAP_FULL] > c->last_map_full) {
		/* a socket without storage may have been filtered wrongly */
		c->last_map_full = cnt[TSG_BPF_C_MAP_FULL];
		cap_rc_lost(c);
	}
}

int tsg_capture_timeout(const struct tsg_capture *c, int timeout_ms)
{
	timeout_ms = cap_rc_timeout(c, timeout_ms);
	timeout_ms = cap_queue_timeout(c, timeout_ms);
	if (c->skel->rodata->wakeup_events && (timeout_ms < 0 || timeout_ms > BATCH_MS))
		timeout_ms = BATCH_MS;
	return timeout_ms;
}

int tsg_capture_fd(const struct tsg_capture *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int tsg_capture_poll(struct tsg_capture *c, int timeout_ms, tsg_event_fn cb, void *ctx)
{
	int err;

	if (!c)
		return -EINVAL;
	c->cb = cb;
	c->cb_ctx = ctx;
	c->delivered = 0;
	timeout_ms = tsg_capture_timeout(c, timeout_ms);
	err = ring_buffer__poll(c->rb, timeout_ms);
	if (err < 0 && err != -EINTR) {
		log_err("capture: ring buffer poll: %s", strerror(-err));
		return err;
	}
	/* events submitted without a wakeup do not make epoll ready: read them */
	ring_buffer__consume(c->rb);
	cap_twend_follow(c);
	cap_netns_tick(c);
	cap_cgate_tick(c);
	check_lost(c);
	cap_rc_scan_if_due(c);
	cap_queue_tick(c);
	c->cb = NULL;
	if (err == -EINTR && !c->delivered)
		return -EINTR;
	return c->delivered;
}

/* ---- socket iterator (snapshot, reconcile scan) ---------------------------------- */

int cap_iter_read_spec(struct tsg_capture *c, int fd, const struct cap_iter_spec *sp)
{
	char buf[64 * 1024];
	size_t have = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && sp->stops)
			break;
		if (n < 0) {
			int err = -errno;

			log_err("capture: TCP socket iterator: %s", strerror(-err));
			return err;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		size_t off = 0;

		for (; sp->rec_size && have - off >= sp->rec_size; off += sp->rec_size) {
			size_t far = off + CAP_AHEAD_FAR * sp->rec_size,
			       near = off + CAP_AHEAD_NEAR * sp->rec_size;

			if (sp->ahead && far + sp->rec_size <= have)
				sp->ahead(c, buf + far, 0);
			if (sp->ahead && near + sp->rec_size <= have)
				sp->ahead(c, buf + near, 1);
			sp->fn(c, buf + off, sp->arg);
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	return 0;
}

/* ---- load / attach ------------------------------------------------------------------ */

uint32_t cap_pow2_at_least(uint32_t v, uint32_t min)
{
	uint32_t p = min;

	while (p < v && p < (1u << 30))
		p <<= 1;
	return p;
}

/* Settings and program choice before the object is loaded. */
static void load_configure(const struct tsg_capture *c, struct tsguard_bpf *s, bool classic)
{
	/* --netns host: only our namespace (0: every namespace) */
	if (c->opts.netns_host)
		s->rodata->netns_ino = c->self_netns;
	/* batch wakeups: the reader is woken when WAKEUP_BYTES wait, and polls
	 * every BATCH_MS anyway (TSG_CAPTURE_WAKEUP_EVERY=1: wake on each event) */
	if (!getenv("TSG_CAPTURE_WAKEUP_EVERY")) {
		int ncpu = libbpf_num_possible_cpus();
		uint32_t n = WAKEUP_BYTES / sizeof(struct tsg_bpf_event) / (ncpu > 0 ? ncpu : 1);

		s->rodata->wakeup_events = n ? n : 1;
	}
	bpf_map__set_max_entries(s->maps.events, cap_pow2_at_least(c->opts.ringbuf_bytes, 4096));
	bpf_program__set_autoload(s->progs.tsg_set_state_btf, !classic);
	bpf_program__set_autoload(s->progs.tsg_set_state_btf2, !classic);
	bpf_program__set_autoload(s->progs.tsg_send_reset_btf, !classic);
	bpf_program__set_autoload(s->progs.tsg_set_state_tp, classic);
	bpf_program__set_autoload(s->progs.tsg_send_reset_tp, classic);
	cap_twend_configure(s, classic);
	bpf_map__set_max_entries(s->maps.fb_socks, classic ? c->opts.max_sockets : 1);
	s->rodata->fallback = classic;
	if (!classic)
		bpf_map__set_max_entries(s->maps.fb_listen, 1);
}

/*
 * Attaches prog. Only the reset marker is optional (`optional` names it):
 * without it a reset FIN_WAIT2 socket may be taken for TIME_WAIT.
 */
static int attach(struct bpf_program *prog, struct bpf_link **link, const char *optional)
{
	*link = bpf_program__attach(prog);
	if (*link)
		return 0;
	if (!optional)
		return errno ? -errno : -EINVAL;
	log_warn("capture: %s not attached (%s): a reset FIN_WAIT2 socket may be reported as "
		 "TIME_WAIT",
		 optional, strerror(errno));
	return 0;
}

static int attach_classic(struct tsguard_bpf *s)
{
	int err = ensure_tracefs();

	if (!err)
		err = attach(s->progs.tsg_set_state_tp, &s->links.tsg_set_state_tp, NULL);
	if (!err)
		err = attach(s->progs.tsg_send_reset_tp, &s->links.tsg_send_reset_tp,
			     "tcp:tcp_send_reset");
	return err;
}

static int attach_btf(struct tsguard_bpf *s)
{
	int err = attach(s->progs.tsg_set_state_btf, &s->links.tsg_set_state_btf, NULL);

	/* the second copy catches what the first misses while nested */
	if (!err)
		err = attach(s->progs.tsg_set_state_btf2, &s->links.tsg_set_state_btf2, NULL);
	if (!err)
		err = attach(s->progs.tsg_send_reset_btf, &s->links.tsg_send_reset_btf,
			     "tp_btf/tcp_send_reset");
	return err;
}

/* An optional syscall-exit program; `without` says what is missing then. */
static void attach_syscall_exit(struct bpf_program *prog, struct bpf_link **link,
				const char *tp, const char *without)
{
	if (ensure_tracefs() == 0)
		*link = bpf_program__attach(prog);
	if (!*link)
		log_info("capture: %s not attached (%s): %s", tp, strerror(errno), without);
}

/* The local port of a connect in progress, at connect()'s return; the
 * owner of an accepted socket, at accept()'s (optional). */
static void attach_syscall_exits(struct tsguard_bpf *s)
{
	attach_syscall_exit(s->progs.tsg_connect_exit, &s->links.tsg_connect_exit,
			    "syscalls:sys_exit_connect",
			    "a connect's local port is known from its next transition only");
	attach_syscall_exit(s->progs.tsg_accept4_exit, &s->links.tsg_accept4_exit,
			    "syscalls:sys_exit_accept4",
			    "accepted sockets keep their listener's owner");
	attach_syscall_exit(s->progs.tsg_accept_exit, &s->links.tsg_accept_exit,
			    "syscalls:sys_exit_accept", "accepted sockets keep their listener's owner");
}

static int load(struct tsg_capture *c, bool classic, struct tsguard_bpf **out)
{
	struct tsguard_bpf *s;
	int err;

	s = tsguard_bpf__open();
	if (!s) {
		err = -errno;
		log_err("capture: cannot open the BPF object: %s", strerror(-err));
		return err ? err : -EINVAL;
	}
	load_configure(c, s, classic);
	err = tsguard_bpf__load(s);
	if (!err)
		err = classic ? attach_classic(s) : attach_btf(s);
	if (err) {
		tsguard_bpf__destroy(s);
		return err;
	}
	attach_syscall_exits(s);
	c->tw_hooks = cap_twend_attach(s);
	*out = s;
	return 0;
}

/* tp_btf, else (or with TSG_CAPTURE_FORCE_CLASSIC set) the classic tracepoint. */
static int load_any(struct tsg_capture *c)
{
	const char *force = getenv("TSG_CAPTURE_FORCE_CLASSIC");
	int err;

	if (force && *force && strcmp(force, "0")) {
		err = -EOPNOTSUPP;
	} else {
		err = load(c, false, &c->skel);
		if (err)
			log_info("capture: tp_btf/inet_sock_set_state unavailable (%s); "
				 "using the classic tracepoint",
				 strerror(-err));
	}
	if (!err)
		return 0;
	err = load(c, true, &c->skel);
	if (err) {
		log_err("capture: cannot load/attach the BPF programs: %s%s", strerror(-err),
			c->verbose ? "" : " (-v shows the libbpf log)");
		if (err == -EPERM || err == -EACCES)
			return -EPERM;
		return err == -ENOMEM ? err : -EOPNOTSUPP;
	}
	c->fallback = true;
	return 0;
}

/* The ring buffer reader and the socket iterator. */
static int attach_readers(struct tsg_capture *c)
{
	int err;

	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), on_event, c, NULL);
	if (!c->rb) {
		err = -errno;
		log_err("capture: cannot set up the ring buffer: %s", strerror(-err));
		return err;
	}
	c->iter_link = bpf_program__attach_iter(c->skel->progs.tsg_iter_tcp, NULL);
	if (!c->iter_link) {
		err = -errno;
		log_err("capture: cannot attach the TCP socket iterator: %s", strerror(-err));
		return -EOPNOTSUPP;
	}
	return cap_act_init(c);
}

static int check_privileges(void)
{
	if (geteuid() != 0 && !has_caps_for_bpf()) {
		log_err("capture: loading BPF needs root or CAP_BPF and CAP_PERFMON "
			"(or --replay FILE, which needs no privileges)");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		log_err("capture: this kernel has no BTF (/sys/kernel/btf/vmlinux): "
			"CONFIG_DEBUG_INFO_BTF is needed for the BPF capture");
		return -EOPNOTSUPP;
	}
	return 0;
}

int tsg_capture_new(const struct tsg_plan *plan, const struct tsg_capture_opts *opts,
		    struct tsg_capture **out)
{
	struct tsg_capture *c;
	int err;

	if (!plan || !out)
		return -EINVAL;
	err = check_privileges();
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (opts)
		c->opts = *opts;
	if (getenv("TSG_RINGBUF_BYTES")) /* tests and tuning (docs/kernel.md) */
		c->opts.ringbuf_bytes = (uint32_t)strtoul(getenv("TSG_RINGBUF_BYTES"), NULL, 0);
	if (!c->opts.ringbuf_bytes)
		c->opts.ringbuf_bytes = 8u << 20;
	if (!c->opts.max_sockets)
		c->opts.max_sockets = 262144;
	if (!c->opts.tw_scan_ms)
		c->opts.tw_scan_ms = 1000;
	c->verbose = c->opts.verbose;
	libbpf_verbose = c->verbose;
	libbpf_set_print(libbpf_print);

	err = cap_tw_init(c);
	if (!err)
		err = cap_owners_init(c);
	if (!err)
		err = cap_netns_init(c);
	if (!err)
		err = load_any(c);
	if (!err)
		err = cap_maps_init(c, plan);
	if (!err)
		err = attach_readers(c);
	if (err) {
		tsg_capture_free(c);
		return err;
	}
	cap_rc_schedule(c);
	log_info("capture: attached (%s), ring buffer %u KiB",
		 c->fallback ? "classic tracepoint sock:inet_sock_set_state"
			     : "tp_btf/inet_sock_set_state",
		 bpf_map__max_entries(c->skel->maps.events) / 1024);
	*out = c;
	return 0;
}

void tsg_capture_get_stats(const struct tsg_capture *c, struct tsg_capture_stats *st)
{
	uint64_t cnt[TSG_BPF_C_N];

	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	read_counters(c, cnt);
	st->seen = cnt[TSG_BPF_C_SEEN];
	st->filtered = cnt[TSG_BPF_C_FILTERED];
	st->sent = cnt[TSG_BPF_C_SENT];
	st->lost = cnt[TSG_BPF_C_LOST];
	st->map_full = cnt[TSG_BPF_C_MAP_FULL] + c->tw_full;
	st->tw_entered = c->tw_entered;
	st->tw_exited = c->tw_exited;
	st->syn_recv_entered = c->req_entered;
	st->syn_recv_exited = c->req_exited;
	st->map_full += c->req_full;
	st->snapshot_sockets = c->snapshot_sockets;
	st->resyncs = c->resyncs;
	st->nested_lost = c->last_nest_lost;
	cap_netns_counts(c, &st->netns_known, &st->netns_overflow, &st->netns_freed);
	st->other_netns = cnt[TSG_BPF_C_OTHER_NS];
	st->other_cgroup = cnt[TSG_BPF_C_OTHER_CG];
	st->cgroup_asked = cnt[TSG_BPF_C_CG_ASKED];
	st->cgroup_allowed = c->cgate.allowed;
	st->cgroup_denied = c->cgate.denied;
	st->cgroup_pending = c->cgate.unresolved + c->cgate.write_failed + c->cgate.nretry;
	st->tw_kernel_ends = c->tw_kernel_ends;
	st->tw_taken = c->tw_taken;
	if (c->verbose)
		log_debug("capture: %" PRIu64
			  " transitions handled by the nested-run copy, %" PRIu64
			  " of namespaces not watched ignored, %" PRIu64
			  " of cgroups the cgroup gate denies",
			  cnt[TSG_BPF_C_NESTED], cnt[TSG_BPF_C_OTHER_NS], cnt[TSG_BPF_C_OTHER_CG]);
}

void tsg_capture_free(struct tsg_capture *c)
{
	if (!c)
		return;
	cap_netns_free(c); /* first: its helper creates iterators of iter_link */
	cap_act_free(c);
	ring_buffer__free(c->rb);
	bpf_link__destroy(c->iter_link);
	tsguard_bpf__destroy(c->skel);
	tsg_plan_free(c->maps_plan);
	cap_tw_free(c);
	cap_owners_free(c);
	free(c);
}
