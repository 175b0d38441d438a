/* SPDX-License-Identifier: MIT */
/*
 * tsguard: live capture from the kernel (bpf/). Loads and attaches the BPF
 * programs, pushes the plan into the filter maps, and delivers normalised
 * transitions: TIME_WAIT entry and exit derived, owners attributed, the
 * startup snapshot synthesised as events with from = TSG_STATE_NONE, what
 * no tracepoint reports found by a periodic scan (NEW_SYN_RECV, an orphan's
 * FIN_WAIT2 -> TIME_WAIT), and the sockets resynced after a loss.
 */
#ifndef TSG_CAPTURE_H
#define TSG_CAPTURE_H

#include "plan.h"
#include "tsg.h"

struct tsg_capture;

typedef void (*tsg_event_fn)(void *ctx, const struct tsg_event *ev);

struct tsg_capture_opts {
	bool verbose;
	uint32_t ringbuf_bytes;   /* default 8 MiB */
	uint32_t max_sockets;     /* socket-storage-independent maps (timewait join); default 262144 */
	uint32_t tw_scan_ms;      /* reconcile scan period (TIME_WAIT, FIN_WAIT2, NEW_SYN_RECV,
				   * resync); default and at most 1000 */
	bool netns_host;          /* --netns host: only tsguard's own network namespace */
};

struct tsg_capture_stats {
	uint64_t seen;      /* transitions the BPF program saw */
	uint64_t filtered;  /* dropped in the kernel: no rule cares */
	uint64_t sent;      /* written to the ring buffer */
	uint64_t lost;      /* ring buffer full */
	uint64_t map_full;  /* bounded map overflow */
	uint64_t tw_entered, tw_exited;
	uint64_t syn_recv_entered, syn_recv_exited; /* NEW_SYN_RECV, found by the scan */
	uint64_t snapshot_sockets;
	uint64_t resyncs;        /* the sockets made equal to the kernel's after a loss */
	uint64_t nested_lost;    /* transitions both attached copies skipped (nested runs) */
	uint64_t netns_known;    /* network namespaces scanned now */
	uint64_t netns_overflow; /* namespaces beyond the cap, not scanned */
	uint64_t netns_freed;    /* namespaces that disappeared and were freed */
	uint64_t other_netns;    /* transitions of namespaces not watched, dropped in the kernel */
	uint64_t other_cgroup;   /* transitions of cgroups the cgroup gate denies, dropped there */
	uint64_t cgroup_asked;   /* cgroups the kernel asked the gate's verdict for */
	uint64_t cgroup_allowed, cgroup_denied; /* verdicts written */
	uint64_t cgroup_pending; /* cgroups left without a verdict (no path, map write failed):
				  * they pass */
	uint64_t tw_kernel_ends; /* ends of followed timewait sockets the kernel reported */
	uint64_t tw_taken;	    /* followed timewait sockets a new connection took over */
};

/*
 * What the engine holds, for the resync after a loss: foreach calls fn once
 * per socket it tracks, with the socket id and state events gave it.
 */
typedef void (*tsg_held_fn)(void *arg, uint64_t sk, uint8_t state);
typedef void (*tsg_held_foreach_fn)(void *ctx, tsg_held_fn fn, void *arg);

/*
 * Loads BPF (tp_btf, falling back to the classic tracepoint), applies the
 * plan, attaches. -EPERM when not privileged, -EOPNOTSUPP when BPF or BTF is
 * unavailable; a message has been logged.
 */
int tsg_capture_new(const struct tsg_plan *plan, const struct tsg_capture_opts *opts,
		    struct tsg_capture **out);
/* Delivers the startup snapshot (sockets that exist now) as events. */
int tsg_capture_snapshot(struct tsg_capture *c, tsg_event_fn cb, void *ctx);
/* Polls the ring buffer up to timeout_ms, delivering events; also runs the
 * TIME_WAIT exit scan when due. Returns events delivered or -errno (-EINTR ok). */
int tsg_capture_poll(struct tsg_capture *c, int timeout_ms, tsg_event_fn cb, void *ctx);
/* For a caller that polls the capture with other descriptors: a descriptor
 * readable when events wait, and timeout_ms shortened to when
 * tsg_capture_poll has work to do anyway (TIME_WAIT scan, batched events). */
int tsg_capture_fd(const struct tsg_capture *c);
int tsg_capture_timeout(const struct tsg_capture *c, int timeout_ms);
/* Lets the resync ask what the engine holds (without it, no resync). */
void tsg_capture_set_held(struct tsg_capture *c, tsg_held_foreach_fn foreach, void *ctx);
/* Swaps the kernel filter to a new plan without detaching (reload). */
int tsg_capture_update_plan(struct tsg_capture *c, const struct tsg_plan *plan);
void tsg_capture_get_stats(const struct tsg_capture *c, struct tsg_capture_stats *st);

/*
 * Queue samples (queue rules, rules.md "when" kind 5). When
 * tsg_plan_wants_queue(plan) is true, the capture samples every listening
 * socket it watches at least once a second and delivers each sample through
 * the same tsg_event_fn as transitions, from tsg_capture_poll():
 *   ev.kind = TSG_EV_QUEUE, ev.from = ev.to = TSG_LISTEN,
 *   ev.sk   = the listener's socket cookie (the id its transitions carry),
 *   ev.info = the listener's socket fields (every field known, every time),
 *   ev.q    = { sk_ack_backlog, sk_max_ack_backlog, drops }, where drops is
 *             a running count, starting at 0 when tsguard began to watch the
 *             listener, of connections the kernel dropped because this queue
 *             was full (SKB_DROP_REASON_TCP_LISTEN_OVERFLOW, per listener).
 * When the plan wants no queue, no listener is sampled.
 */

/*
 * Closes the socket whose cookie is `cookie` in network namespace `netns`
 * (its inode; 0: tsguard's own), in the kernel, as `ss -K` does: the owner's
 * next call fails with ECONNABORTED, the peer gets a reset. Only the socket
 * with that cookie is touched, never another that reuses its 4-tuple.
 * 0, -ENOENT when no such socket exists (any more), other -errno.
 */
int tsg_capture_destroy(struct tsg_capture *c, uint64_t cookie, uint32_t netns);
void tsg_capture_free(struct tsg_capture *c);

#endif
