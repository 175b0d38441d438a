/* SPDX-License-Identifier: MIT */
/*
 * tsguard: what the files of the capture share (not a public header; the
 * contract is capture.h). docs/kernel.md, "Files":
 *
 *   capture.c           load and attach, ring buffer records -> events, poll, stats, free
 *   capture_maps.c      the plan -> the kernel filter maps (startup, reload)
 *   capture_owner.c     owners: cgroup id -> path, owners of pre-existing sockets
 *   capture_timewait.c  timewait and request sockets followed until they disappear
 *   capture_twend.c     the kernel's reports on timewait sockets: loading, attaching
 *   capture_snapshot.c  the startup / reload snapshot (iter/tcp + /proc)
 *   capture_reconcile.c the periodic scan (iter/tcp) and the resync after a loss
 *   capture_netns.c     the network namespaces scanned, and entering them
 *   capture_act.c       closing a socket (destroy), accept-queue samples
 *   capture_cgate.c     the cgroup gate: verdicts on the cgroups the kernel asks about
 */
#ifndef TSG_CAPTURE_PRIV_H
#define TSG_CAPTURE_PRIV_H

#include "capture.h"
#include "tsguard_bpf.h"

struct tw_entry;
struct cg_entry;
struct snapshot_owner;
struct listener_owner;
struct cap_netns;
struct cap_queue;

/* the cgroup gate (capture_cgate.c): cgroups whose path was not known yet */
#define CAP_CG_RETRY_MAX 256
struct cap_cg_retry {
	uint64_t id;
	uint32_t tries;
};
struct cap_cgate {
	struct cap_cg_retry retry[CAP_CG_RETRY_MAX];
	size_t nretry;
	uint64_t next_retry_ns;
	uint64_t allowed, denied; /* verdicts written */
	uint64_t unresolved;	  /* no path found (gone, or the retry list full): pending */
	uint64_t write_failed;	  /* cg_verdict update failed: pending */
};

struct tsg_capture {
	struct tsguard_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *iter_link;
	bool fallback; /* classic tracepoint */
	bool verbose;
	struct tsg_capture_opts opts;
	struct tsg_plan *maps_plan; /* what the kernel filter maps hold now */

	/* delivery during poll and snapshot */
	tsg_event_fn cb;
	void *cb_ctx;
	int delivered;

	/* timewait and request sockets followed (capture_timewait.c) */
	struct tw_entry **tw;
	size_t tw_nbuckets, tw_n, req_n;
	uint32_t scan_gen;
	size_t tw_seen_n; /* followed sockets seen in generation scan_gen */
	uint64_t next_scan_ns;
	uint64_t tw_scan_last_ns; /* how long the last scan pass took */
	uint64_t tw_entered, tw_exited, tw_full;
	bool tw_hooks;		  /* timewait programs attached (capture_twend.c) */
	uint64_t tw_kernel_ends;  /* ends of followed sockets it reported */
	uint64_t tw_taken;	  /* followed timewait sockets a new connection took over */
	uint64_t next_tw_pass_ns; /* reported ends: the next scan that lists timewait sockets */
	uint64_t next_lis_learn_ns; /* the next light pass that learns the listeners again */
	uint64_t req_entered, req_exited, req_full;

	/* the reconcile scan and the resync (capture_reconcile.c) */
	tsg_held_foreach_fn held_foreach;
	void *held_ctx;
	bool resync_pending;
	uint64_t resyncs, last_map_full;

	/* cgroup id -> v2 path (capture_owner.c) */
	char cg_root[256];   /* cgroup2 mount point, "" if none */
	char cg_prefix[256]; /* the mount's root inside the hierarchy ("" for /) */
	struct cg_entry **cg;
	size_t cg_n;
	uint64_t cg_last_walk;

	/* owners of sockets that predate tsguard (capture_owner.c) */
	struct snapshot_owner **snapshot_owners;	    /* chains, NULL when none */
	size_t snapshot_owners_n, snapshot_owners_nbuckets; /* a power of two */
	struct listener_owner *listener_owners;
	size_t listener_owners_n;

	/* network namespaces (capture_netns.c); NULL with --netns host */
	uint32_t self_netns; /* the inode of tsguard's own */
	struct cap_netns *netns;
	uint32_t *netns_allowed; /* what the gate netns_allow holds now */
	size_t netns_allowed_n;

	/* acting on sockets (capture_act.c) */
	struct bpf_link *destroy_link, *queue_link;
	struct cap_queue *queue;

	uint64_t snapshot_sockets;
	uint64_t last_lost;
	uint64_t last_nest_lost; /* transitions both attached copies missed */
	uint64_t last_lost_log;
	struct cap_cgate cgate;
};

/* ---- capture.c ---- */

/* Hands an event to the callback of the running poll or snapshot. */
void cap_deliver(struct tsg_capture *c, const struct tsg_event *ev);
/* The 4-tuple fields every kernel record carries (port 0: not known yet). */
void cap_info_from_bpf(struct tsg_sockinfo *in, const uint8_t *la, const uint8_t *ra, uint16_t lp,
		       uint16_t rp, uint8_t family);
/* The socket's namespace (and its name); its cgroup (its own, else its
 * owner's) with the container and pod found in it. */
void cap_info_netns(struct tsg_capture *c, struct tsg_sockinfo *in, uint32_t netns);
void cap_info_cgroup(struct tsg_capture *c, struct tsg_sockinfo *in, uint64_t sk_cgroup);
typedef void (*cap_iter_fn)(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg);
/* One iter/tcp program: its link, the size of its records (0: it writes
 * none) and fn for each record (rec is not aligned); optionally `ahead`
 * for the records CAP_AHEAD_FAR (stage 0) and CAP_AHEAD_NEAR (stage 1)
 * ahead of the one fn is given, to prefetch what fn will read. */
struct bpf_link;
struct cap_iter_spec {
	struct bpf_link *link;
	size_t rec_size;
	void (*fn)(struct tsg_capture *c, const void *rec, void *arg);
	void *arg;
	void (*ahead)(const struct tsg_capture *c, const void *rec, int stage);
	/* the program ends the pass early: it returns 1 (retry) where it has seen
	 * all it wants, and read() then fails with EAGAIN, the end of the pass */
	bool stops;
	/* a record the program leaves in its global data when it stops at a
	 * socket it wants (read() drops that socket's output), *tail_ok set:
	 * taken after each namespace's walk (NULL: none) */
	const void *tail;
	uint32_t *tail_ok;
};
#define CAP_AHEAD_FAR  16
#define CAP_AHEAD_NEAR 8
/* Reads an iter/tcp fd to its end (which runs the program), sp->fn for each record. */
int cap_iter_read_spec(struct tsg_capture *c, int fd, const struct cap_iter_spec *sp);
uint32_t cap_pow2_at_least(uint32_t v, uint32_t min);

/* ---- capture_maps.c ---- */

/* Some rule of the plan the kernel filters by wants sockets in `state`. */
bool cap_plan_wants(const struct tsg_capture *c, uint8_t state);

/* Writes `plan` into the freshly loaded maps (generation 1); 0 or -errno. */
int cap_maps_init(struct tsg_capture *c, const struct tsg_plan *plan);

/* ---- capture_owner.c ---- */

/* The fields of a socket's owner. */
#define CAP_OWNER_FIELDS (TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM) | TSG_HAVE(TSG_SF_CGROUP))

int cap_owners_init(struct tsg_capture *c);
void cap_owners_free(struct tsg_capture *c);
/* The cgroup v2 path of a kernel cgroup id, NULL when unknown. */
const char *cap_cgroup_path(struct tsg_capture *c, uint64_t id);
/* Sets in's cgroup to that path with the container and pod in it
 * (tsg_sockinfo_set_cgroup, parsed once per cgroup); false when the id is
 * unknown (in unchanged). */
bool cap_cgroup_ident(struct tsg_capture *c, uint64_t id, struct tsg_sockinfo *in);
/* Gives info the owner fields (CAP_OWNER_FIELDS) that `owner` knows. */
void cap_owner_fill(struct tsg_sockinfo *info, const struct tsg_sockinfo *owner);
/* Snapshot: remembers the owner of a full socket that predates tsguard. */
void cap_owners_remember(struct tsg_capture *c, const struct tsg_event *ev);
/* Live event: the owner the snapshot found, for a socket the kernel has none for. */
void cap_owners_apply(struct tsg_capture *c, struct tsg_event *ev);

/* Forgets the listeners that predate tsguard in a namespace that is gone. */
void cap_owners_forget_netns(struct tsg_capture *c, uint32_t netns);

/* ---- capture_netns.c ---- */

/* The own namespace; with --netns all also the set of the others. */
int cap_netns_init(struct tsg_capture *c);
void cap_netns_free(struct tsg_capture *c);
/* Finds the namespaces that exist now (and their names); frees those gone. */
void cap_netns_discover(struct tsg_capture *c);
/* Every few seconds: discovery again (names, namespaces gone). */
void cap_netns_tick(struct tsg_capture *c);
/* An event of namespace ino: looked up if unknown (at most once a second). */
void cap_netns_event(struct tsg_capture *c, uint32_t ino);
const char *cap_netns_name(const struct tsg_capture *c, uint32_t ino);
bool cap_netns_known(const struct tsg_capture *c, uint32_t ino);
uint32_t cap_netns_self(const struct tsg_capture *c);
/* The inode of a namespace named NAME under /run/netns, 0 when none. */
uint32_t cap_netns_lookup_name(const struct tsg_capture *c, const char *name);
uint64_t cap_netns_count(const struct tsg_capture *c);
void cap_netns_counts(const struct tsg_capture *c, uint64_t *known, uint64_t *overflow,
		      uint64_t *freed);
/* Runs iter/tcp in every known namespace (or those in only[nonly]), fn for
 * each record. An error of our own namespace is returned; the others' are
 * logged and skipped. */
int cap_netns_iter(struct tsg_capture *c, const uint32_t *only, size_t nonly, bool tw_only,
		   cap_iter_fn fn, void *arg);
/* The same for any iter/tcp program (capture_act.c: destroy, queue samples). */
int cap_netns_iter_spec(struct tsg_capture *c, const uint32_t *only, size_t nonly,
			const struct cap_iter_spec *sp);
/* The kernel gate netns_allow from the plan the maps hold (capture_maps.c). */
void cap_netns_allow_refresh(struct tsg_capture *c);

/* ---- capture_cgate.c ---- */
/* Generation 1, the gate as the plan the maps hold wants it. */
void cap_cgate_init(struct tsg_capture *c);
/* Reload, before the maps change: every verdict stale; opened if `next` wants it open. */
void cap_cgate_begin(struct tsg_capture *c, const struct tsg_plan *next);
/* Closed or opened as the plan the maps hold (c->maps_plan) wants. */
void cap_cgate_apply(struct tsg_capture *c);
/* The kernel asks about cgroup `id` (a TSG_BPF_F_CGROUP record of generation gen). */
void cap_cgate_ask(struct tsg_capture *c, uint64_t id, uint32_t gen);
/* Retries the cgroups whose path was not known yet (at most once a second). */
void cap_cgate_tick(struct tsg_capture *c);

/* ---- capture_act.c ---- */

/* Attaches the destroy and queue iterators (a failure is logged: 0). */
int cap_act_init(struct tsg_capture *c);
void cap_act_free(struct tsg_capture *c);
/* When due and a queue rule exists: one queue sample per listener, delivered. */
void cap_queue_tick(struct tsg_capture *c);
/* timeout_ms shortened to the next queue pass while queue rules exist. */
int cap_queue_timeout(const struct tsg_capture *c, int timeout_ms);

/* ---- capture_timewait.c ---- */

int cap_tw_init(struct tsg_capture *c);
void cap_tw_free(struct tsg_capture *c);
/* A hash of a 4-tuple (addresses and host-order ports) in a namespace. */
uint64_t cap_tuple_hash(uint32_t netns, const uint8_t la[16], const uint8_t ra[16], uint16_t lp,
			uint16_t rp);
/* Follows a socket that goes on as a timewait socket (event or snapshot;
 * ev->to: TIME_WAIT, or FIN_WAIT2 for an orphan). */
void cap_tw_enter(struct tsg_capture *c, const struct tsg_event *ev);
/* Follows a request socket (NEW_SYN_RECV) found by a scan. */
void cap_req_enter(struct tsg_capture *c, const struct tsg_event *ev);
/* The info of ev's socket when it is followed already (same 4-tuple and id). */
const struct tsg_sockinfo *cap_tw_followed(struct tsg_capture *c, const struct tsg_event *ev);
/* cap_iter_spec.ahead of iter/tcp records: prefetches what cap_tw_record reads. */
void cap_tw_prefetch(const struct tsg_capture *c, const void *rec, int stage);
/* The next scan generation: no followed socket is seen in it yet. */
void cap_tw_new_gen(struct tsg_capture *c);
/* Scan pass (generation c->scan_gen): one record; true when it is followed. */
bool cap_tw_record(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, uint64_t t);
/* End of a scan pass: the exits of followed sockets it did not see (request
 * sockets only, unless the pass listed timewait sockets); how many. */
size_t cap_tw_finish(struct tsg_capture *c, uint64_t t, bool timewait);
/* The namespaces of the followed sockets (distinct, at most TSG_BPF_NETNS_MAX). */
size_t cap_tw_namespaces(struct tsg_capture *c, uint32_t *out);
/* A namespace is gone: its followed sockets end now; how many. */
size_t cap_tw_forget_netns(struct tsg_capture *c, uint32_t netns);
/* A TSG_BPF_F_TWEND record: the followed timewait socket of in's 4-tuple
 * (cookie: the one it inherited, 0 none) is gone (to CLOSE) or in TIME_WAIT. */
void cap_tw_kernel(struct tsg_capture *c, const struct tsg_sockinfo *in, uint64_t cookie,
		   uint8_t to, uint64_t ts);
/* ev's socket (a new connection) has the 4-tuple of a followed timewait
 * socket: the kernel let it take that one over, which is gone. */
void cap_tw_taken_over(struct tsg_capture *c, const struct tsg_event *ev);

/* ---- capture_twend.c ---- */
struct tsguard_bpf;
/* Before load: the timewait programs load only where the kernel has what they need. */
void cap_twend_configure(struct tsguard_bpf *s, bool classic);
/* After load: attaches them; true when both are attached. */
bool cap_twend_attach(struct tsguard_bpf *s);
/* The kernel reports timewait ends: attached, and the timer's function known. */
bool cap_twend_active(const struct tsg_capture *c);
/* tw_follow as what is followed and what the plan wants (each poll). */
void cap_twend_follow(struct tsg_capture *c);
/* The iterator leaves timewait sockets out (a scan pass that needs none). */
void cap_twend_iter_skip(struct tsg_capture *c, bool skip);
/* A pass that may end at each namespace's last listener begins (true) or
 * ends (false) (bpf/tsguard_listen.bpf.h). */
void cap_twend_lis_stop(struct tsg_capture *c, bool may);
/* Before a namespace's iter/tcp walk: where the light pass may end
 * (bpf/tsguard_listen.bpf.h); true: the light pass can skip it. */
bool cap_twend_ns_begin(struct tsg_capture *c, uint32_t ino);

/* ---- capture_snapshot.c ---- */

struct cap_snap_sock {
	struct tsg_bpf_iter_rec r;
	uint32_t pid;
};

/* Records collected for delivery from NONE (snapshot, resync entries). */
struct cap_snap {
	struct cap_snap_sock *v;
	size_t n, cap;
	bool oom;
};

/* The event id of an iterator record's socket (cookie, or synthesised). */
uint64_t cap_rec_id(const struct tsg_bpf_iter_rec *r);
/* An event NONE -> r->state at t for the record (tuple, uid, a request's owner). */
void cap_rec_event(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, uint64_t t,
		   struct tsg_event *ev);
/* cap_iter_fn: adds the record to `arg`, a struct cap_snap. */
void cap_snap_collect(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg);
/* Owners from /proc, then each record delivered from NONE (snapshot = 1)
 * and followed if it is a timewait or request socket; empties s. */
void cap_snap_deliver(struct tsg_capture *c, struct cap_snap *s, uint64_t t);

/* ---- capture_reconcile.c ---- */

/* The next scan is due tw_scan_ms from now. */
void cap_rc_schedule(struct tsg_capture *c);
/* timeout_ms shortened to the next scan while one is needed. */
int cap_rc_timeout(const struct tsg_capture *c, int timeout_ms);
/* Notes a loss (ring buffer full, map full): the next scan, now, resyncs. */
void cap_rc_lost(struct tsg_capture *c);
/* When due and needed: drains the ring buffer, runs one scan pass (in the
 * namespaces it needs). */
void cap_rc_scan_if_due(struct tsg_capture *c);

#endif
