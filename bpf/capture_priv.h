/* SPDX-License-Identifier: MIT */
/*
 * tsguard: what the files of the capture share (not a public header; the
 * contract is capture.h). docs/kernel.md, "Files":
 *
 *   capture.c           load and attach, ring buffer records -> events, poll, stats, free
 *   capture_maps.c      the plan -> the kernel filter maps (startup, reload)
 *   capture_owner.c     owners: cgroup id -> path, owners of pre-existing sockets
 *   capture_timewait.c  timewait and request sockets followed until they disappear
 *   capture_snapshot.c  the startup / reload snapshot (iter/tcp + /proc)
 *   capture_reconcile.c the periodic scan (iter/tcp) and the resync after a loss
 */
#ifndef TSG_CAPTURE_PRIV_H
#define TSG_CAPTURE_PRIV_H

#include "capture.h"
#include "tsguard_bpf.h"

struct tw_entry;
struct cg_entry;
struct snapshot_owner;
struct listener_owner;

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
	uint64_t next_scan_ns;
	uint64_t tw_entered, tw_exited, tw_full;
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
	struct snapshot_owner **snapshot_owners; /* OWNER_BUCKETS, NULL when none */
	size_t snapshot_owners_n;
	struct listener_owner *listener_owners;
	size_t listener_owners_n;

	uint64_t snapshot_sockets;
	uint64_t last_lost;
	uint64_t last_lost_log;
};

/* ---- capture.c ---- */

/* Hands an event to the callback of the running poll or snapshot. */
void cap_deliver(struct tsg_capture *c, const struct tsg_event *ev);
/* The 4-tuple fields every kernel record carries (port 0: not known yet). */
void cap_info_from_bpf(struct tsg_sockinfo *in, const uint8_t *la, const uint8_t *ra, uint16_t lp,
		       uint16_t rp, uint8_t family);
typedef void (*cap_iter_fn)(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, void *arg);
/* Runs iter/tcp (all sockets, or only timewait ones), fn for each record. */
int cap_run_iter(struct tsg_capture *c, bool tw_only, cap_iter_fn fn, void *arg);
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
/* Gives info the owner fields (CAP_OWNER_FIELDS) that `owner` knows. */
void cap_owner_fill(struct tsg_sockinfo *info, const struct tsg_sockinfo *owner);
/* Snapshot: remembers the owner of a full socket that predates tsguard. */
void cap_owners_remember(struct tsg_capture *c, const struct tsg_event *ev);
/* Live event: the owner the snapshot found, for a socket the kernel has none for. */
void cap_owners_apply(struct tsg_capture *c, struct tsg_event *ev);

/* ---- capture_timewait.c ---- */

int cap_tw_init(struct tsg_capture *c);
void cap_tw_free(struct tsg_capture *c);
/* A hash of a 4-tuple (addresses and host-order ports). */
uint64_t cap_tuple_hash(const uint8_t la[16], const uint8_t ra[16], uint16_t lp, uint16_t rp);
/* Follows a socket that goes on as a timewait socket (event or snapshot;
 * ev->to: TIME_WAIT, or FIN_WAIT2 for an orphan). */
void cap_tw_enter(struct tsg_capture *c, const struct tsg_event *ev);
/* Follows a request socket (NEW_SYN_RECV) found by a scan. */
void cap_req_enter(struct tsg_capture *c, const struct tsg_event *ev);
/* The info of ev's socket when it is followed already (same 4-tuple and id). */
const struct tsg_sockinfo *cap_tw_followed(struct tsg_capture *c, const struct tsg_event *ev);
/* Scan pass (generation c->scan_gen): one record; true when it is followed. */
bool cap_tw_record(struct tsg_capture *c, const struct tsg_bpf_iter_rec *r, uint64_t t);
/* End of a scan pass: the exits of followed sockets it did not see. */
void cap_tw_finish(struct tsg_capture *c, uint64_t t);

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
/* When due and needed: drains the ring buffer, runs one scan pass. */
void cap_rc_scan_if_due(struct tsg_capture *c);

#endif
